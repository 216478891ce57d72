"""User data stream payloads and REST snapshots become the engine's order, fill, position and balance events.

One translator per account keeps what it has already said, so the same fact reaching it twice (from the
stream and from a REST reconciliation after a reconnect, or from a placement reply and the stream's NEW)
is published once: fills by (symbol, trade id), terminal states by client id, positions and the wallet
by value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.enums import BalanceReason, OrderStatus, OrderType, Side
from ..core.events import (
    Alert,
    BalanceChanged,
    FundingApplied,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    PositionChanged,
)
from ..core.ports import VenueBalance, VenuePosition
from .account import HEDGE_HINT, MULTI_ASSETS_NOTE, AccountModes
from .snapshots import safe, venue_balances, venue_order, venue_positions
from .wire import (
    FORCED_PREFIXES,
    ZERO,
    accepted_from_rest,
    dec,
    fill_status,
    is_algo,
    opt_dec,
    order_status,
    order_type_of,
)

log = logging.getLogger(__name__)

Publish = Callable[[Any], None]

_REASONS = {"ORDER": BalanceReason.ORDER, "FUNDING_FEE": BalanceReason.FUNDING_FEE,
            "DEPOSIT": BalanceReason.DEPOSIT, "ADMIN_DEPOSIT": BalanceReason.DEPOSIT}


@dataclass(slots=True)
class OrderState:
    """What we know of one order (ours, or one seen on the stream)."""

    client_id: str
    symbol: str
    algo: bool
    side: Side | None = None
    order_type: OrderType | None = None
    quantity: Decimal | None = None
    order_id: int = 0
    accepted: bool = False
    terminal: bool = False
    filled: Decimal = ZERO
    actual_id: int = 0  # an algo order's triggered plain order
    trades: set[int] = field(default_factory=set)


class UserTranslator:
    """Turns user-stream messages and REST snapshots into bus events, each fact once."""

    def __init__(
        self,
        publish: Publish,
        now_ms: Callable[[], int],
        leverage: Callable[[str], int],
        *,
        asset: str = "USDT",
        observe: Callable[[int], None] | None = None,
        symbols: Collection[str] | None = None,
    ) -> None:
        """``symbols``: the symbols the engine trades; positions on any other symbol are logged and kept in
        :attr:`foreign_positions`, never published (None: every symbol is the engine's)."""
        self._publish = publish
        self._now = now_ms
        self._leverage = leverage
        self._observe = observe or (lambda _ts: None)
        self.asset = asset
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.foreign_positions: dict[str, tuple[Decimal, Decimal]] = {}
        """Positions on symbols the engine does not trade: visible (status, logs), not adopted."""
        self.modes = AccountModes()
        self.orders: dict[str, OrderState] = {}
        self._by_actual: dict[int, str] = {}
        self._trades: set[tuple[str, int]] = set()
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}
        self._position_ts: dict[str, int] = {}
        self.wallet: Decimal | None = None
        self.events_seen = 0
        self.last_event_ms = 0

    # ------------------------------------------------------------------------------ our orders
    def expect(self, r: OrderRequest) -> OrderState:
        """Register an order before it is sent, so its events are recognised whatever arrives first."""
        st = self.orders.get(r.client_order_id)
        if st is None:
            st = self.orders[r.client_order_id] = OrderState(r.client_order_id, r.symbol, is_algo(r.order_type))
        st.side, st.order_type, st.quantity = r.side, r.order_type, r.quantity
        return st

    def open_orders(self) -> list[OrderState]:
        return [o for o in self.orders.values() if not o.terminal]

    def known_fills(self, trades: Iterable[tuple[str, int]], filled: Mapping[str, Decimal]) -> None:
        """Fills already journaled (resume): a snapshot or stream message repeating one is not a new fill."""
        self._trades.update(trades)
        for cid, qty in filled.items():
            if cid in self.orders:
                self.orders[cid].filled = qty

    def accepted(self, data: Mapping[str, Any]) -> None:
        """A placement reply or a query result: OrderAccepted unless already said, and a final state if any."""
        ev = accepted_from_rest(data, self._now())
        st = self._state(ev.client_order_id, ev.symbol, "algoId" in data)
        st.order_id = ev.order_id
        st.side, st.order_type = ev.side, ev.order_type
        if ev.quantity is not None:
            st.quantity = ev.quantity
        actual = data.get("actualOrderId")
        if actual:
            self._link(st, int(actual))
        if not st.accepted and not st.terminal:
            st.accepted = True
            self._emit(ev)

    def rejected(self, r: OrderRequest, code: int, reason: str) -> None:
        self.closed_as_rejected(self.expect(r), code, reason)

    def closed_as_rejected(self, st: OrderState, code: int, reason: str) -> None:
        """An order the venue never took (or never showed): OrderRejected, once."""
        if st.terminal:
            return
        st.terminal = True
        now = self._now()
        self._emit(OrderRejected(client_order_id=st.client_id, symbol=st.symbol, code=code, reason=reason,
                                 ts_event=now, ts_init=now))

    def finished(self, data: Mapping[str, Any]) -> None:
        """A query or cancel reply showing a final state: the terminal event, if the stream has not said it."""
        status = order_status(data)
        algo = "algoId" in data
        cid = str(data.get("clientAlgoId") if algo else data.get("clientOrderId"))
        st = self._state(cid, str(data.get("symbol", "")), algo)
        ts = int(data.get("updateTime") or self._now())
        order_id = int((data.get("algoId") if algo else data.get("orderId")) or 0)
        if algo and data.get("algoStatus") == "FINISHED":
            self._algo_finished(st, dec(data.get("actualQty")), dec(data.get("quantity")), order_id, ts)
        elif status is OrderStatus.CANCELED:
            self._terminal(st, OrderCanceled, order_id, "canceled", ts)
        elif status in (OrderStatus.EXPIRED, OrderStatus.EXPIRED_IN_MATCH, OrderStatus.REJECTED):
            self._terminal(st, OrderExpired, order_id, status.value.lower(), ts)

    def _algo_finished(self, st: OrderState, venue_filled: Decimal, requested: Decimal, algo_id: int,
                       ts: int) -> None:
        """An algo order FINISHED: its triggered order ended. Filled (the child's fills say so, or the venue's
        executed quantity reaches the request; a closePosition order requests no quantity) ends it quietly;
        anything less (the child expired or was cancelled, perhaps during a stream gap) is an OrderExpired
        saying how much filled, so nothing counts it as a live stop any more."""
        if st.terminal:
            return
        filled = max(venue_filled, st.filled)
        requested = requested or (st.quantity or ZERO)
        if filled > 0 and (requested == 0 or filled >= requested):
            st.terminal = True  # the fills carry FILLED; the quantity not seen yet comes from userTrades
            return
        self._terminal(st, OrderExpired, algo_id, f"finished with {filled:f} of {requested:f} filled", ts)

    def now_ms(self) -> int:
        """The time events are stamped with (the venue's market clock)."""
        return self._now()

    def alert(self, kind: str, message: str, symbol: str | None = None, severity: str = "warning") -> None:
        """Publish an :class:`Alert` (journaled, shown to the operator) and log it."""
        (log.error if severity == "critical" else log.warning)("%s: %s", kind, message)
        now = self._now()
        self._emit(Alert(kind=kind, message=message, symbol=symbol, severity=severity, ts_event=now, ts_init=now))

    # ------------------------------------------------------------------------------ stream
    def on_message(self, msg: Mapping[str, Any]) -> None:
        kind = msg.get("e")
        ts = int(msg.get("E") or 0)
        if ts:
            self._observe(ts)
            self.last_event_ms = ts
        self.events_seen += 1
        if kind == "ORDER_TRADE_UPDATE":
            self._order_update(msg["o"], int(msg.get("T") or ts))
        elif kind == "ALGO_UPDATE":
            self._algo_update(msg["o"], int(msg.get("T") or ts))
        elif kind == "ACCOUNT_UPDATE":
            self._account_update(msg["a"], int(msg.get("T") or ts))
        elif kind == "ACCOUNT_CONFIG_UPDATE":
            self._config_update(msg)
        elif kind in ("MARGIN_CALL", "TRADE_LITE", "STRATEGY_UPDATE", "GRID_UPDATE",
                      "CONDITIONAL_ORDER_TRIGGER_REJECT", "listenKeyExpired"):
            if kind == "MARGIN_CALL":
                log.warning("MARGIN_CALL from the venue: %s", msg.get("p"))
        else:
            log.debug("ignored user stream event %r", kind)

    def _order_update(self, o: Mapping[str, Any], ts: int) -> None:
        order_id = int(o["i"])
        symbol = str(o["s"])
        cid = self._by_actual.get(order_id) or self._triggered_algo(o, order_id) or str(o["c"])
        st = self.orders.get(cid)
        triggered = st is not None and st.algo
        if st is None:
            st = self._state(cid, symbol, False)
        x = o.get("x")
        if x == "NEW":
            if st.accepted or st.terminal or triggered:
                return
            otype = order_type_of(o)
            if otype is None:  # an order type we do not know (LIQUIDATION...) on an order that is not ours
                log.info("user stream: order %s of unknown type %r accepted", cid, o.get("o"))
                return
            st.accepted = True
            st.order_id = order_id
            st.side, st.order_type, st.quantity = Side(o["S"]), otype, dec(o.get("q"))
            close = bool(o.get("cp", False))
            self._emit(OrderAccepted(
                client_order_id=cid, order_id=order_id, symbol=symbol, side=st.side, order_type=otype,
                quantity=None if close else st.quantity, price=opt_dec(o.get("p")), trigger_price=opt_dec(o.get("sp")),
                reduce_only=bool(o.get("R", False)), close_position=close, ts_event=ts, ts_init=self._now(),
            ))
        elif x in ("TRADE", "CALCULATED"):
            # Never drop a fill for a value we do not know: the type falls back to the original type, then
            # MARKET; the status is derived from cumulative vs ordered quantity (X=NEW_ADL, NEW_INSURANCE...).
            liquidation = (x == "CALCULATED" or cid.startswith(FORCED_PREFIXES) or o.get("o") == "LIQUIDATION"
                           or o.get("X") in ("NEW_ADL", "NEW_INSURANCE"))
            self._fill(st, symbol, order_id, int(o.get("t") or 0), Side(o["S"]), order_type_of(o) or OrderType.MARKET,
                       dec(o["l"]), dec(o["L"]), dec(o.get("n")), dec(o.get("rp")), bool(o.get("m", False)),
                       fill_status(o), bool(o.get("R", False)) or bool(o.get("cp", False)), liquidation,
                       int(o.get("T") or ts), str(o.get("N") or self.asset))
        elif x == "CANCELED":
            self._terminal(st, OrderCanceled, order_id, "canceled", ts)
        elif x == "EXPIRED":
            er = o.get("er")
            self._terminal(st, OrderExpired, order_id, f"expired{'' if er in (None, '0') else f' ({er})'}", ts)

    def _triggered_algo(self, o: Mapping[str, Any], order_id: int) -> str | None:
        """The algo order an unknown plain order came from, when its ALGO_UPDATE (with ``ai``) is not here yet:
        the only open algo order of ours with the same symbol, side and original type."""
        if str(o["c"]) in self.orders or str(o["c"]).startswith("autoclose-"):
            return None
        try:
            otype, side = OrderType(o.get("ot") or o["o"]), Side(o["S"])
        except ValueError:
            return None
        if not otype.is_conditional:
            return None
        found = [st for st in self.orders.values() if st.algo and not st.terminal and not st.actual_id
                 and st.symbol == o["s"] and st.side is side and st.order_type is otype]
        if len(found) != 1:
            return None
        self._link(found[0], order_id)
        return found[0].client_id

    def _algo_update(self, o: Mapping[str, Any], ts: int) -> None:
        cid = str(o["caid"])
        st = self._state(cid, str(o["s"]), True)
        algo_id = int(o["aid"])
        st.order_id = algo_id
        status = o.get("X")
        if o.get("ai"):
            self._link(st, int(o["ai"]))
        if status == "NEW":
            if st.accepted or st.terminal:
                return
            st.accepted = True
            close = bool(o.get("cp", False))
            otype = OrderType(o["o"])
            st.side, st.order_type = Side(o["S"]), otype
            self._emit(OrderAccepted(
                client_order_id=cid, order_id=algo_id, symbol=st.symbol, side=st.side, order_type=otype,
                quantity=None if close else dec(o.get("q")), price=opt_dec(o.get("p")),
                trigger_price=opt_dec(o.get("tp")), reduce_only=bool(o.get("R", False)), close_position=close,
                ts_event=ts, ts_init=self._now(),
            ))
        elif status == "CANCELED":
            self._terminal(st, OrderCanceled, algo_id, "canceled", ts)
        elif status == "FINISHED":
            self._algo_finished(st, dec(o.get("aq")), dec(o.get("q")), algo_id, ts)
        elif status in ("EXPIRED", "REJECTED"):
            self._terminal(st, OrderExpired, algo_id, str(o.get("rm") or status).lower(), ts)

    def _account_update(self, a: Mapping[str, Any], ts: int) -> None:
        reason = str(a.get("m", ""))
        for row in a.get("P") or []:
            if row.get("ps", "BOTH") != "BOTH":
                self.hedge_seen(str(row.get("s")), f"{row.get('s')} {row.get('ps')} row")
                continue
            self._position(str(row["s"]), dec(row["pa"]), dec(row["ep"]), ts)
        for row in a.get("B") or []:
            if row.get("a") != self.asset:
                continue
            wallet = dec(row["wb"])
            change = dec(row.get("bc")) if reason != "ORDER" else wallet - (self.wallet or wallet)
            if reason == "FUNDING_FEE":
                self._funding(a, change, ts)
            self._balance(wallet, change, _REASONS.get(reason, BalanceReason.ADJUSTMENT), ts)

    def _config_update(self, msg: Mapping[str, Any]) -> None:
        """ACCOUNT_CONFIG_UPDATE: a leverage change (``ac``, ours at start-up: nothing to do) or the
        multi-assets mode switched (``ai.j``): an Alert, since the wallet's meaning changes."""
        ai = msg.get("ai")
        if not isinstance(ai, Mapping) or "j" not in ai:
            return
        on = bool(ai["j"])
        if on == self.modes.multi_assets:
            return
        self.modes.multi_assets = on
        self.alert("account_mode", MULTI_ASSETS_NOTE if on else "multi-assets margin mode switched off: the USDT "
                   "wallet margins USDT-M symbols alone again")

    def hedge_seen(self, symbol: str, evidence: str) -> None:
        """A hedge-mode (LONG/SHORT) row on the stream or in a snapshot: the account left one-way mode."""
        if self.modes.hedge:
            return
        self.modes.hedge = True
        self.alert("account_mode", f"hedge mode on the account ({evidence}): the engine's orders will be "
                   f"refused (-4061) and its positions read as flat; {HEDGE_HINT}", symbol, "critical")

    # ------------------------------------------------------------------------------ snapshots
    def trades_snapshot(self, st: OrderState, trades: Iterable[Mapping[str, Any]], orig_qty: Decimal) -> int:
        """Fills of one order from ``GET /fapi/v1/userTrades``, oldest first; returns how many were new."""
        new = 0
        cum = ZERO
        for t in sorted(trades, key=lambda t: int(t["id"])):
            qty = dec(t["qty"])
            cum += qty
            status = OrderStatus.FILLED if orig_qty and cum >= orig_qty else OrderStatus.PARTIALLY_FILLED
            key = (str(t["symbol"]), int(t["id"]))
            if key in self._trades:
                continue
            new += 1
            self._fill(st, key[0], int(t["orderId"]), key[1], Side(t["side"]), st.order_type or OrderType.MARKET, qty,
                       dec(t["price"]), dec(t.get("commission")), dec(t.get("realizedPnl")), bool(t.get("maker")),
                       status, False, False, int(t["time"]), str(t.get("commissionAsset") or self.asset))
        return new

    def positions_snapshot(self, positions: Iterable[VenuePosition], symbols: Iterable[str], ts: int) -> None:
        """The venue's positions (the port's snapshot); configured symbols missing from them are flat."""
        seen: set[str] = set()
        for p in positions:
            seen.add(p.symbol)
            if not self._ours(p.symbol, p.quantity, p.entry_price):
                continue
            if p.symbol in self.positions or p.quantity != 0:
                self._position(p.symbol, p.quantity, p.entry_price, max(ts, p.update_ms), snapshot=True)
        for sym in symbols:
            if sym not in seen and self.positions.get(sym, (ZERO, ZERO))[0] != 0:
                self._position(sym, ZERO, ZERO, ts, snapshot=True)

    def balance_snapshot(self, balances: Iterable[VenueBalance], ts: int) -> Decimal | None:
        for b in balances:
            if b.asset == self.asset:
                change = b.wallet - self.wallet if self.wallet is not None else ZERO
                self._balance(b.wallet, change, BalanceReason.ADJUSTMENT, ts)
                return b.wallet
        return None

    # ------------------------------------------------------------------------------ internals
    def _state(self, cid: str, symbol: str, algo: bool) -> OrderState:
        st = self.orders.get(cid)
        if st is None:
            st = self.orders[cid] = OrderState(cid, symbol, algo)
        return st

    def _link(self, st: OrderState, actual: int) -> None:
        st.actual_id = actual
        self._by_actual[actual] = st.client_id

    def _emit(self, event: Any) -> None:
        self._publish(event)

    def _terminal(self, st: OrderState, cls: type, order_id: int, reason: str, ts: int) -> None:
        if st.terminal:
            return
        st.terminal = True
        self._emit(cls(client_order_id=st.client_id, order_id=order_id or st.order_id, symbol=st.symbol,
                       reason=reason, ts_event=ts, ts_init=self._now()))

    def _fill(self, st: OrderState, symbol: str, order_id: int, trade_id: int, side: Side, otype: OrderType,
              qty: Decimal, price: Decimal, fee: Decimal, rpnl: Decimal, maker: bool, status: OrderStatus,
              reduce_only: bool, liquidation: bool, ts: int, asset: str) -> None:
        key = (symbol, trade_id)
        if trade_id and key in self._trades:
            return
        self._trades.add(key)
        st.trades.add(trade_id)
        st.filled += qty
        if status is OrderStatus.FILLED:
            st.terminal = True
        self._emit(OrderFilled(
            client_order_id=st.client_id, order_id=order_id, trade_id=trade_id, symbol=symbol, side=side,
            order_type=otype, quantity=qty, price=price, commission=fee, realized_pnl=rpnl, is_maker=maker,
            status=status, reduce_only=reduce_only, liquidation=liquidation, commission_asset=asset, ts_event=ts,
            ts_init=self._now(),
        ))

    def _ours(self, symbol: str, qty: Decimal, entry: Decimal) -> bool:
        """True for a symbol the engine trades; any other position is logged once per change and kept aside."""
        if self.symbols is None or symbol in self.symbols:
            return True
        now = (qty, ZERO if qty == 0 else entry)
        if self.foreign_positions.get(symbol, (ZERO, ZERO)) != now:
            log.warning("position on %s (not traded by this engine): %s @ %s; left alone, not counted in exposure "
                        "or the daily loss", symbol, qty, entry)
        if qty == 0:
            self.foreign_positions.pop(symbol, None)
        else:
            self.foreign_positions[symbol] = now
        return False

    def _position(self, symbol: str, qty: Decimal, entry: Decimal, ts: int, snapshot: bool = False) -> None:
        if not self._ours(symbol, qty, entry):
            return
        if snapshot and ts < self._position_ts.get(symbol, 0):
            return
        self._position_ts[symbol] = max(ts, self._position_ts.get(symbol, 0))
        if qty == 0:
            entry = ZERO
        if self.positions.get(symbol) == (qty, entry):
            return
        self.positions[symbol] = (qty, entry)
        self._emit(PositionChanged(symbol=symbol, quantity=qty, entry_price=entry, leverage=self._leverage(symbol),
                                   ts_event=ts, ts_init=self._now()))

    def _balance(self, wallet: Decimal, change: Decimal, reason: BalanceReason, ts: int) -> None:
        if self.wallet == wallet:
            return
        self.wallet = wallet
        self._emit(BalanceChanged(asset=self.asset, wallet_balance=wallet, change=change, reason=reason,
                                  ts_event=ts, ts_init=self._now()))

    def _funding(self, a: Mapping[str, Any], amount: Decimal, ts: int) -> None:
        """FundingApplied when the symbol is known: named by the event (2026) or the only open position."""
        symbol = a.get("S")
        if not symbol:
            open_ = [s for s, (q, _e) in self.positions.items() if q != 0]
            if len(open_) != 1:
                log.info("funding %s not attributed to a symbol (%d open positions)", amount, len(open_))
                return
            symbol = open_[0]
        qty = self.positions.get(str(symbol), (ZERO, ZERO))[0]
        self._emit(FundingApplied(symbol=str(symbol), funding_rate=ZERO, mark_price=ZERO, position_quantity=qty,
                                  amount=amount, ts_event=ts, ts_init=self._now()))


__all__ = ["OrderState", "UserTranslator", "safe", "venue_balances", "venue_order", "venue_positions"]
