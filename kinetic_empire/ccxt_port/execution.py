"""An execution port on ccxt's unified API: the same verbs and events as the native Binance adapter.

Why: ccxt reaches Binance's demo trading and the testnets of many other venues with one API. This port
holds a ``ccxt.pro`` exchange (REST for orders and snapshots, its user-data watchers for fills) and is
held to the same :class:`~kinetic_empire.core.ports.ExecutionPort` contract suite as the native adapter
and the backtest broker (``tests/integration/test_execution_contract.py``, against the local sandbox).

What it promises, and where it differs from :class:`~kinetic_empire.binance.execution.BinanceExecution`:

- Every order carries the engine's deterministic client id (ccxt's ``clientOrderId``), so a duplicate is
  refused by the venue (-4116 on Binance) and is neither a second order nor a rejection of the first.
- Unknown outcome (ccxt ``NetworkError``/``RequestTimeout``, or a 5xx): the order is looked up by client
  id with backoff for ``unknown_bound_s`` and **never sent again**; if the venue still does not know it,
  an :class:`Alert` says so and reconciliation decides. The native adapter may resend a non-market
  order the venue provably does not know; this port never resends anything.
- Conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET) go through ccxt's ``stopLossPrice`` /
  ``takeProfitPrice``: on Binance ccxt routes them to the algo endpoint. ``workingType`` and
  ``closePosition`` are passed through as venue parameters (Binance-family venues understand them).
- Fills come from ccxt's ``watch_my_trades``; prices, quantities and fees are ccxt floats turned into
  ``Decimal`` by their shortest repr, exact for every value a venue sends with 15 or fewer digits.
  Realized PnL is the venue's when it reports one (Binance's ``rp``), else 0 (the portfolio keeps its own).
- Cancels publish :class:`OrderCanceled` from the venue's answer; orders canceled or expired by the venue
  are reported by ``watch_orders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.bus import EventBus
from ..core.clock import Clock, LiveClock
from ..core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType
from ..core.events import (
    Alert,
    CancelAllRequest,
    CancelRequest,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
)
from ..core.ports import VenueBalance, VenueOrder, VenuePosition
from .markets import engine_symbol

log = logging.getLogger(__name__)

_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')
_MSG = re.compile(r'"msg"\s*:\s*"([^"]*)"')
DUPLICATE_CODES = frozenset({-4116, -4015})  # Binance: clientOrderId is duplicated
_STATUS = {"open": OrderStatus.NEW, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
           "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}
_CCXT_TYPE = {"limit": OrderType.LIMIT, "market": OrderType.MARKET, "stop_market": OrderType.STOP_MARKET,
              "take_profit_market": OrderType.TAKE_PROFIT_MARKET, "stop": OrderType.STOP,
              "take_profit": OrderType.TAKE_PROFIT}


def dec(x: Any) -> Decimal:
    """A ccxt number (float, int or str) as an exact Decimal of its shortest representation."""
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(str(x))


def venue_error(exc: BaseException) -> tuple[int, str]:
    """The venue's code and message inside a ccxt exception (Binance: ``... {"code":-2019,"msg":"..."}``)."""
    text = str(exc)
    code = _CODE.search(text)
    msg = _MSG.search(text)
    return (int(code.group(1)) if code else -1, msg.group(1) if msg else text[:200])


@dataclass
class _Tracked:
    """What the port knows of an order it placed: enough to cancel and query it by client id."""

    request: OrderRequest
    order_id: int = 0
    conditional: bool = False
    terminal: bool = False
    filled: Decimal = field(default_factory=Decimal)


class CcxtExecution:
    """Places and cancels the bus's orders through a ccxt.pro exchange; reports outcomes as bus events."""

    def __init__(
        self,
        bus: EventBus,
        exchange: Any,
        *,
        timer: Clock | None = None,
        before_send: Callable[[Any], None] | None = None,
        unknown_bound_s: float = 20.0,
    ) -> None:
        self._bus = bus
        self.exchange = exchange
        self._timer = timer or LiveClock()
        self._before_send = before_send or (lambda command: None)
        self.unknown_bound_s = unknown_bound_s
        self._orders: dict[str, _Tracked] = {}
        self._by_order_id: dict[int, str] = {}
        self._trades: set[tuple[str, str]] = set()
        self._markets: dict[str, str] = {}  # engine symbol -> ccxt symbol
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: list[asyncio.Task[Any]] = []
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(CancelRequest, self.on_cancel)
        bus.subscribe(CancelAllRequest, self.on_cancel_all)

    # ---------------------------------------------------------------------------------- lifecycle
    async def start(self, symbols: Iterable[str]) -> None:
        """Load markets and start the user-data watchers for ``symbols`` (engine names)."""
        markets = await self.exchange.load_markets()
        by_engine = {engine_symbol(m): m["symbol"] for m in markets.values() if m.get("swap") and m.get("linear")}
        for sym in symbols:
            if sym not in by_engine:
                raise ValueError(f"{sym}: not a linear perpetual on {self.exchange.id}")
            self._markets[sym] = by_engine[sym]
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(self.exchange.watch_my_trades, self._on_trades)),
                          loop.create_task(self._watch(self.exchange.watch_orders, self._on_orders))]

    async def close(self) -> None:
        for task in [*self._watchers, *self._tasks]:
            task.cancel()
        for task in [*self._watchers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.exchange.close()

    async def drain(self) -> None:
        """Wait for every send in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _watch(self, watcher: Callable[..., Any], handle: Callable[[list[Any]], None]) -> None:
        backoff = 0.5
        while True:
            try:
                handle(await watcher())
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped stream: ccxt reconnects on the next call
                log.warning("ccxt %s: %s; watching again in %.1f s", watcher.__name__, exc, backoff)
                await self._timer.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        self._spawn(self.submit(r))

    def on_cancel(self, r: CancelRequest) -> None:
        self._spawn(self.cancel(r.symbol, r.client_order_id, r))

    def on_cancel_all(self, r: CancelAllRequest) -> None:
        self._spawn(self.cancel_all([r.symbol], r))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------------- the verbs
    async def submit(self, r: OrderRequest) -> None:
        tracked = self._orders.get(r.client_order_id)
        if tracked is not None and not tracked.terminal and tracked.order_id:
            return  # the same client id is alive: not a second order, not a rejection of the first
        self._before_send(r)
        tracked = self._orders[r.client_order_id] = _Tracked(r, conditional=r.order_type.is_conditional)
        kind, price, params = self._order_args(r)
        off_grid = self._off_grid(r)
        if off_grid:  # ccxt would silently truncate it: refuse as the venue would, never change an order
            tracked.terminal = True
            now = self._timer.now_ms()
            self._bus.publish(OrderRejected(client_order_id=r.client_order_id, symbol=r.symbol, code=-1111,
                                            reason="Precision is over the maximum defined for this asset. "
                                            f"({off_grid})",
                                            ts_event=now, ts_init=now))
            return
        try:
            placed = await self.exchange.create_order(self._market(r.symbol), kind, r.side.value.lower(),
                                                      _float(r.quantity), price, params)
        except Exception as exc:
            if _unknown_outcome(exc):
                await self._resolve_unknown(r)
                return
            code, msg = venue_error(exc)
            if code in DUPLICATE_CODES:
                return
            tracked.terminal = True
            now = self._timer.now_ms()
            self._bus.publish(OrderRejected(client_order_id=r.client_order_id, symbol=r.symbol, code=code,
                                            reason=msg, ts_event=now, ts_init=now))
            return
        self._accepted(r, placed)

    async def cancel(self, symbol: str, client_id: str, request: CancelRequest | None = None) -> bool:
        if request is not None:
            self._before_send(request)
        tracked = self._orders.get(client_id)
        conditional = tracked.conditional if tracked is not None else None
        for trigger in ((conditional,) if conditional is not None else (False, True)):
            try:
                answer = await self.exchange.cancel_order(None, self._market(symbol), self._id_params(client_id,
                                                                                                        trigger))
            except Exception as exc:
                code, _ = venue_error(exc)
                if code in (-2011, -2013) or type(exc).__name__ == "OrderNotFound":
                    continue
                raise
            self._finished(symbol, client_id, answer, OrderCanceled, "canceled")
            return True
        return False

    async def cancel_all(self, symbols: Iterable[str], request: CancelAllRequest | None = None) -> None:
        if request is not None:
            self._before_send(request)
        for sym in symbols:
            market = self._market(sym)
            open_plain = await self.exchange.fetch_open_orders(market)
            open_cond = await self.exchange.fetch_open_orders(market, None, None, {"trigger": True})
            for order, trigger in [*((o, False) for o in open_plain), *((o, True) for o in open_cond)]:
                cid = str(order.get("clientOrderId") or "")
                try:
                    answer = await self.exchange.cancel_order(order["id"], market, {"trigger": True} if trigger else {})
                except Exception as exc:
                    if type(exc).__name__ == "OrderNotFound":
                        continue  # finished meanwhile
                    raise
                self._finished(sym, cid, answer, OrderCanceled, "cancel all")

    async def query_order(self, symbol: str, client_id: str) -> VenueOrder | None:
        tracked = self._orders.get(client_id)
        tries = (tracked.conditional,) if tracked is not None else (False, True)
        for trigger in tries:
            try:
                order = await self.exchange.fetch_order(None, self._market(symbol), self._id_params(client_id, trigger))
            except Exception as exc:
                code, _ = venue_error(exc)
                if code in (-2011, -2013) or type(exc).__name__ == "OrderNotFound":
                    continue
                raise
            return self._venue_order(symbol, client_id, order)
        return None

    async def positions(self) -> list[VenuePosition]:
        rows = await self.exchange.fetch_positions(list(self._markets.values()) or None)
        out = []
        for p in rows:
            contracts = dec(p.get("contracts") or 0)
            if contracts == 0:
                continue
            signed = -contracts if p.get("side") == "short" else contracts
            lev = p.get("leverage") or (p.get("info") or {}).get("leverage") or 1
            out.append(VenuePosition(symbol=self._engine(p["symbol"]), quantity=signed,
                                     entry_price=dec(p.get("entryPrice") or 0), leverage=int(float(lev)),
                                     update_ms=int(p.get("timestamp") or 0)))
        return out

    async def balances(self) -> list[VenueBalance]:
        """The wallet per asset. ccxt's unified ``total`` for futures is the margin balance (wallet plus
        unrealized PnL), so the venue's own wallet figure is used where the answer carries it (Binance's
        ``assets[].walletBalance``); other venues give ccxt's ``total``, documented as the difference."""
        bal = await self.exchange.fetch_balance()
        info = bal.get("info") if isinstance(bal, Mapping) else None
        assets = info.get("assets") if isinstance(info, Mapping) else None
        if isinstance(assets, list) and assets and "walletBalance" in assets[0]:
            return [VenueBalance(asset=str(a["asset"]), wallet=Decimal(str(a["walletBalance"])),
                                 available=Decimal(str(a.get("availableBalance", "0")))) for a in assets]
        out = []
        for asset, row in bal.items():
            if not isinstance(row, Mapping) or "total" not in row or asset in ("info", "free", "used", "total"):
                continue
            if row.get("total") is None:
                continue
            out.append(VenueBalance(asset=asset, wallet=dec(row["total"]), available=dec(row.get("free") or 0)))
        return out

    # ------------------------------------------------------------------------------ translation
    def _order_args(self, r: OrderRequest) -> tuple[str, float | None, dict[str, Any]]:
        params: dict[str, Any] = {"clientOrderId": r.client_order_id}
        if r.reduce_only:
            params["reduceOnly"] = True
        if r.close_position:
            params["closePosition"] = True
        if r.working_type is not WorkingType.CONTRACT_PRICE:
            params["workingType"] = r.working_type.value
        if r.order_type is OrderType.LIMIT:
            tif = r.time_in_force or TimeInForce.GTC
            if tif is TimeInForce.GTX:
                params["postOnly"] = True
            else:
                params["timeInForce"] = tif.value
            return "limit", _float(r.price), params
        if r.order_type is OrderType.MARKET:
            return "market", None, params
        if r.order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            key = "stopLossPrice" if r.order_type is OrderType.STOP_MARKET else "takeProfitPrice"
            params[key] = _float(r.trigger_price)
            return "market", None, params
        raise ValueError(f"{r.order_type.value}: not offered by the ccxt port")

    def _off_grid(self, r: OrderRequest) -> str:
        """Which value ccxt's precision formatting would change ('' when every value is on the grid)."""
        market = self._market(r.symbol)
        checks = [("quantity", r.quantity, self.exchange.amount_to_precision),
                  ("price", r.price, self.exchange.price_to_precision),
                  ("trigger price", r.trigger_price, self.exchange.price_to_precision)]
        for name, value, fmt in checks:
            if value is not None and Decimal(fmt(market, float(value))) != value:
                return f"{name} {value}"
        return ""

    def _id_params(self, client_id: str, trigger: bool) -> dict[str, Any]:
        """Find an order by client id: Binance names it origClientOrderId (plain) or clientAlgoId (conditional)."""
        return {"trigger": True, "clientAlgoId": client_id} if trigger else {"origClientOrderId": client_id}

    def _accepted(self, r: OrderRequest, placed: Mapping[str, Any]) -> None:
        tracked = self._orders[r.client_order_id]
        tracked.order_id = int(placed["id"])
        self._by_order_id[tracked.order_id] = r.client_order_id
        now = self._timer.now_ms()
        self._bus.publish(OrderAccepted(
            client_order_id=r.client_order_id, order_id=tracked.order_id, symbol=r.symbol, side=r.side,
            order_type=r.order_type, quantity=r.quantity, price=r.price, trigger_price=r.trigger_price,
            reduce_only=r.reduce_only, close_position=r.close_position, ts_event=int(placed.get("timestamp") or now),
            ts_init=now))

    async def _resolve_unknown(self, r: OrderRequest) -> None:
        """Look the order up by client id with backoff until ``unknown_bound_s``; never send it again."""
        waited, delay = 0.0, 0.25
        while waited < self.unknown_bound_s:
            await self._timer.sleep(delay)
            waited += delay
            delay = min(delay * 2, 4.0)
            with contextlib.suppress(Exception):
                if await self.query_order(r.symbol, r.client_order_id) is not None:  # records the venue's id
                    self._accepted(r, {"id": self._orders[r.client_order_id].order_id, "timestamp": None})
                    return
        now = self._timer.now_ms()
        self._bus.publish(Alert(kind="unknown_order_outcome", symbol=r.symbol, severity="critical",
                                message=f"{r.client_order_id}: the venue did not confirm or deny the order within "
                                f"{self.unknown_bound_s:.0f} s; not sent again, reconciliation decides",
                                ts_event=now, ts_init=now))

    def _venue_order(self, symbol: str, client_id: str, order: Mapping[str, Any]) -> VenueOrder:
        tracked = self._orders.get(client_id)
        if tracked is not None and order.get("id") is not None and not tracked.order_id:
            tracked.order_id = int(order["id"])
            self._by_order_id[tracked.order_id] = client_id
        raw_type = str(order.get("type") or "").lower()
        otype = tracked.request.order_type if tracked is not None else _CCXT_TYPE.get(raw_type, OrderType.LIMIT)
        price = order.get("price")
        trigger = order.get("triggerPrice") or order.get("stopPrice")
        return VenueOrder(
            client_order_id=client_id, symbol=symbol, side=Side(str(order["side"]).upper()), order_type=otype,
            status=_STATUS.get(str(order.get("status")), OrderStatus.NEW), quantity=dec(order.get("amount") or 0),
            filled=dec(order.get("filled") or 0), price=dec(price) if price else None,
            trigger_price=dec(trigger) if trigger else None)

    def _finished(self, symbol: str, client_id: str, order: Mapping[str, Any], cls: type, reason: str) -> None:
        tracked = self._orders.get(client_id)
        if tracked is not None:
            if tracked.terminal:
                return
            tracked.terminal = True
        now = self._timer.now_ms()
        order_id = int(order.get("id") or (tracked.order_id if tracked else 0))
        self._bus.publish(cls(client_order_id=client_id, order_id=order_id, symbol=symbol, reason=reason,
                              ts_event=now, ts_init=now))

    def _on_orders(self, orders: list[Any]) -> None:
        for o in orders:
            cid = str(o.get("clientOrderId") or "")
            status = o.get("status")
            if cid in self._orders and status in ("canceled", "expired", "rejected"):
                cls = OrderCanceled if status == "canceled" else OrderExpired
                self._finished(self._engine(o["symbol"]), cid, o, cls, str(status))

    def _on_trades(self, trades: list[Any]) -> None:
        for t in trades:
            key = (str(t.get("symbol")), str(t.get("id")))
            if key in self._trades:
                continue
            self._trades.add(key)
            order_id = int(t.get("order") or 0)
            info = t.get("info") or {}
            cid = self._by_order_id.get(order_id) or str(info.get("c") or "")
            tracked = self._orders.get(cid)
            if tracked is None:
                log.info("ccxt: a fill of an order this run did not place (%s); reconciliation adopts it", cid)
                continue
            qty = dec(t["amount"])
            tracked.filled += qty
            full = tracked.request.quantity is not None and tracked.filled >= tracked.request.quantity
            if full:
                tracked.terminal = True
            fee = t.get("fee") or {}
            now = self._timer.now_ms()
            self._bus.publish(OrderFilled(
                client_order_id=cid, order_id=order_id, trade_id=int(t["id"]), symbol=tracked.request.symbol,
                side=Side(str(t["side"]).upper()), order_type=tracked.request.order_type, quantity=qty,
                price=dec(t["price"]), commission=dec(fee.get("cost") or 0),
                realized_pnl=dec(info.get("rp") or 0), is_maker=t.get("takerOrMaker") == "maker",
                status=OrderStatus.FILLED if full or tracked.request.close_position else OrderStatus.PARTIALLY_FILLED,
                reduce_only=tracked.request.reduce_only, ts_event=int(t.get("timestamp") or now), ts_init=now))

    # ---------------------------------------------------------------------------------- names
    def _market(self, symbol: str) -> str:
        try:
            return self._markets[symbol]
        except KeyError:
            raise ValueError(f"{symbol}: not started on this port (start() takes the traded symbols)") from None

    def _engine(self, market: str) -> str:
        for engine, ccxt_symbol in self._markets.items():
            if ccxt_symbol == market:
                return engine
        return market.replace("/", "").split(":")[0]


def _float(x: Decimal | None) -> float | None:
    """ccxt takes numbers; it formats them to the market's precision itself."""
    return None if x is None else float(x)


def _unknown_outcome(exc: BaseException) -> bool:
    """ccxt's errors that leave the order's fate unknown: the network, a timeout, the venue's 5xx."""
    names = {type(c).__name__ for c in type(exc).__mro__}
    if names & {"RequestTimeout", "NetworkError", "ExchangeNotAvailable"}:
        return not names & {"InvalidOrder", "InsufficientFunds"}
    code, _ = venue_error(exc)
    return code in (-1000, -1001, -1006, -1007)
