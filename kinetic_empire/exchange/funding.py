"""Funding of the simulated exchange: positions held at a settlement time pay or receive the funding rate.

The rate is the config's constant unless a replayed series (``/fapi/v1/fundingRate``) gives one for that
settlement time. The mark price is the replayed one (:mod:`.marked`) when the backtest has mark-price klines;
otherwise the kline's open, where settlement happens, stands in for it.
"""

from __future__ import annotations

from ..core.enums import BalanceReason, MarginType
from ..core.events import FundingApplied
from .book import Book, dec, money
from .ledger import Ledger


class Funding(Ledger):
    """Settles funding when a kline reaches a position's next settlement time."""

    def _settle_funding(self, book: Book, ts: int, mark: float) -> None:
        interval = self.config.funding_interval_ms
        funding_time = book.next_funding
        book.next_funding = (ts // interval + 1) * interval
        series = self.config.funding_rates.get(book.symbol)
        rate = series.get(funding_time, self.config.funding_rate) if series else self.config.funding_rate
        mark_d = book.rules.round_price_nearest(dec(book.mark or mark))
        amount = money(-book.pos.qty * mark_d * rate)
        self.wallet += amount
        if book.pos.margin_type is MarginType.ISOLATED:  # booked to the position's isolated wallet
            book.pos.iso_wallet += amount
        self._income(book.symbol, "FUNDING_FEE", amount, funding_time, "FUNDING_FEE")
        now = self._clock.now_ms()
        self._emit(
            FundingApplied(
                symbol=book.symbol,
                funding_rate=rate,
                mark_price=mark_d,
                position_quantity=book.pos.qty,
                amount=amount,
                ts_event=funding_time,
                ts_init=now,
            )
        )
        self._emit_balance(amount, BalanceReason.FUNDING_FEE, funding_time, now)
        self._update_liquidation_prices()
