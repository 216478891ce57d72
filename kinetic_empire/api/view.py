"""What the gateway reads from a running engine, as JSON-ready dicts (it never writes through here).

Everything is read on the event loop that runs the engine, between two bus deliveries, so each answer is
one consistent moment of the run. Money is a string (exact Decimal); prices from market data are floats.
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.events import KlineClosed, MarkPriceUpdated
from .encode import dec_str, event_dict, plain
from .orders import OrderTable

if TYPE_CHECKING:
    from ..live.app import LiveEngine

_ZERO = Decimal(0)


class EngineView:
    """Read-only JSON views of one live engine, plus the little the bus alone knows (last kline, marks)."""

    def __init__(self, engine: LiveEngine, orders: OrderTable, *, equity_points: int = 20_000) -> None:
        self.engine = engine
        self.orders = orders
        self.last_kline: dict[str, KlineClosed] = {}  # per symbol, the shortest timeframe's latest
        self.marks: dict[str, MarkPriceUpdated] = {}
        self.equity_curve: deque[tuple[int, str]] = deque(maxlen=equity_points)

    # ------------------------------------------------------------------------------ bus readers
    def on_kline(self, k: KlineClosed) -> None:
        last = self.last_kline.get(k.symbol)
        if last is None or k.ts_event >= last.ts_event:
            self.last_kline[k.symbol] = k
        curve = self.equity_curve
        if not curve or k.ts_event > curve[-1][0]:
            curve.append((k.ts_event, format(self.engine.portfolio.equity(), "f")))

    def on_mark(self, m: MarkPriceUpdated) -> None:
        self.marks[m.symbol] = m

    # ------------------------------------------------------------------------------ views
    def uptime_s(self) -> float:
        e = self.engine
        return round(e.timer.now_ms() / 1000 - e.health.started_wall, 3)

    def health(self) -> dict[str, Any]:
        e = self.engine
        feed, user = e.feed, e.user
        lags = {f"{s} {tf}": _round(feed.age_s((s, tf))) for s, tf in feed.topics}
        return {
            "ok": e.started and not e.health.journal_failure,
            "run_id": e.run_id,
            "uptime_s": self.uptime_s(),
            "venue": e.venue.name,
            "market_time_ms": e.clock.now_ms(),
            "market_stream": {"connected": feed.connected, "klines": feed.published, "reconnects": feed.reconnects,
                              "backfilled": feed.backfilled, "age_s": lags, "stale": list(e.health.stale_topics)},
            "user_stream": {"connected": user.connected, "reconnects": user.reconnects,
                            "events": e.translator.events_seen},
            "journal": {"ok": not e.health.journal_failure, "failure": e.health.journal_failure},
            "handler_errors": e.health.handler_errors,
            "orders": {"placed": e.execution.placed, "rejected": e.execution.rejected},
            "last_venue_error": e.execution.last_error,
        }

    def config(self) -> dict[str, Any]:
        """The effective config: venue, symbols, strategies with parameters, risk; never a key."""
        e = self.engine
        out = e.config.to_dict()
        out["run_id"] = e.run_id
        out["venue"] = {"name": e.venue.name, "rest_url": e.venue.rest_url, "ws_url": e.venue.ws_url}
        out["symbols"] = list(e.symbols)
        out["leverage"] = {s: e.portfolio.leverage(s) for s in e.symbols}
        return out

    def market(self, symbol: str) -> dict[str, Any]:
        e = self.engine
        k = self.last_kline.get(symbol)
        mark = self.marks.get(symbol)
        now = e.clock.now_ms()
        ages = [a for (s, tf) in e.feed.topics if s == symbol and (a := e.feed.age_s((s, tf))) is not None]
        return {
            "symbol": symbol,
            "last_price": e.portfolio.last_price(symbol) or None,
            "mark_price": mark.mark_price if mark is not None else None,
            "funding_rate": mark.funding_rate if mark is not None else None,
            "last_kline": event_dict(k) if k is not None else None,
            "feed_lag_ms": (now - k.ts_event) if k is not None else None,
            "feed_age_s": _round(min(ages)) if ages else None,
        }

    def account(self) -> dict[str, Any]:
        p = self.engine.portfolio
        wallet, equity, available = p.wallet_balance(), p.equity(), p.available_balance()
        asset = self.engine.translator.asset
        return {
            "asset": asset,
            "wallet_balance": plain(wallet),
            "equity": plain(equity),
            "unrealized_pnl": plain(equity - wallet),
            "margin_used": plain(equity - available),
            "available_balance": plain(available),
            "initial_balance": plain(self.engine.initial_balance),
            "balances": [{"asset": asset, "wallet_balance": plain(wallet), "available_balance": plain(available)}],
        }

    def positions(self) -> list[dict[str, Any]]:
        p = self.engine.portfolio
        stops: dict[str, dict[str, str | None]] = {}
        for row in self.orders.open():
            if row.close_position and row.trigger_price is not None:
                key = "stop_price" if row.order_type.startswith("STOP") else "take_profit_price"
                stops.setdefault(row.symbol, {})[key] = dec_str(row.trigger_price)
        out = []
        for pos in p.positions():
            if pos.quantity == 0:
                continue
            last = p.last_price(pos.symbol)
            upnl = pos.quantity * (Decimal(repr(last)) - pos.entry_price) if last else _ZERO
            out.append({
                "symbol": pos.symbol, "quantity": plain(pos.quantity), "entry_price": plain(pos.entry_price),
                "leverage": pos.leverage, "last_price": last or None, "unrealized_pnl": plain(upnl),
                "stop_price": stops.get(pos.symbol, {}).get("stop_price"),
                "take_profit_price": stops.get(pos.symbol, {}).get("take_profit_price"),
            })
        return out

    def risk(self) -> dict[str, Any]:
        e = self.engine
        return {
            "state": e.risk.state.value,
            "symbols": {s: e.risk.state_of(s).value for s in e.symbols},
            "feed_stale": e.health.paused_for_stale,
            "journal_failure": e.health.journal_failure,
        }

    def trades(self) -> list[dict[str, Any]]:
        names = None
        out = []
        for t in self.engine.portfolio.trades:
            if names is None:
                names = [f.name for f in fields(t)]
            out.append({n: plain(getattr(t, n)) for n in names})
        return out

    def equity(self) -> dict[str, Any]:
        return {"initial_balance": plain(self.engine.initial_balance),
                "points": [[ts, eq] for ts, eq in self.equity_curve]}

    def snapshot(self) -> dict[str, Any]:
        return {"account": self.account(), "positions": self.positions(),
                "orders": [r.to_json() for r in self.orders.open()], "risk": self.risk(), "health": self.health()}


def market_of(k: KlineClosed, lag_ms: int, mark: MarkPriceUpdated | None) -> dict[str, Any]:
    """The ``market`` stream message of a kline as it arrived (same shape as :meth:`EngineView.market`)."""
    return {"symbol": k.symbol, "last_price": k.close, "mark_price": mark.mark_price if mark else None,
            "funding_rate": mark.funding_rate if mark else None, "last_kline": event_dict(k), "feed_lag_ms": lag_ms,
            "feed_age_s": 0.0}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
