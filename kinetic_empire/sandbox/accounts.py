"""One sandbox account per API key: a :class:`SimulatedExchange` plus what Binance's wire adds to it.

The exchange keeps a conditional order and the order it becomes on trigger as one record; Binance
shows two (an algo order with ``algoId``, then a plain order with its own ``orderId``). This module
keeps that mapping so REST and the user stream can show both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.clock import Clock
from ..core.rules import LeverageBrackets, SymbolRules
from ..exchange.config import ExchangeConfig
from ..exchange.orders import SimOrder
from ..exchange.simulated import SimulatedExchange
from .auth import ApiKey
from .errors import ApiError, invalid

# Plain orders take the exchange's ids (from 1,000,001); orders placed by triggered algo orders are
# numbered from here so the two never collide.
ACTUAL_ID_BASE = 8_000_000_001


class AlgoRecord:
    """Wire state of one conditional order."""

    __slots__ = ("actual_id", "algo_type", "price_protect", "sim", "trigger_time", "update_time")

    def __init__(self, sim: SimOrder, price_protect: bool = False) -> None:
        self.sim = sim
        self.algo_type = "CONDITIONAL"
        self.actual_id = 0  # 0 until triggered
        self.trigger_time = 0
        self.update_time = sim.time
        self.price_protect = price_protect

    @property
    def algo_id(self) -> int:
        return self.sim.order_id

    @property
    def triggered(self) -> bool:
        return self.actual_id != 0

    @property
    def status(self) -> str:
        """Binance's algoStatus: NEW, CANCELED, EXPIRED before a trigger; TRIGGERED, FINISHED after."""
        sim = self.sim
        if self.triggered:
            return "TRIGGERED" if sim.is_open else "FINISHED"
        if sim.is_open:
            return "NEW"
        return "CANCELED" if sim.status.value == "CANCELED" else "EXPIRED"


class Account:
    """An account: key, exchange model, algo bookkeeping. Events go to ``sink`` (the user stream)."""

    def __init__(
        self,
        key: ApiKey,
        *,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        clock: Clock,
        config: ExchangeConfig,
        symbols: Iterable[str],
        sink: Callable[[Account, Any], None],
    ) -> None:
        self.key = key
        self._sink = sink
        self.exchange = SimulatedExchange(
            rules, brackets, clock=clock, emit=self._emit, config=config, symbols=list(symbols)
        )
        self.clock = clock
        self.algos: dict[int, AlgoRecord] = {}
        self.actual: dict[int, AlgoRecord] = {}
        self.next_actual_id = ACTUAL_ID_BASE
        self.listen_key: str | None = None
        self.listen_key_expires = 0  # wall ms
        self.margin_call_sent = False
        # Account-wide switches (reference 3.4): position mode, multi-assets margin, BNB fee burn.
        self.hedge = False
        self.multi_assets = False
        self.fee_burn = False
        # For the ``--state`` journal: ids of orders whose record changed since it last wrote them, and
        # a hook called on every exchange event (before the event reaches the user stream).
        # ``touched``: something may have changed since the journal last looked (an event, a price
        # update, a request that is not a GET), so the journal skips accounts nothing happened to.
        self.dirty: set[int] = set()
        self.touched = False
        self.on_change: Callable[[], None] | None = None

    def _emit(self, event: Any) -> None:
        self.touched = True
        order_id = getattr(event, "order_id", None)
        if order_id is not None:
            self.dirty.add(order_id)
        if self.on_change is not None:
            self.on_change()
        self._sink(self, event)

    def check_position_side(self, side: str | None) -> None:
        """An order's ``positionSide`` against the position mode (reference 4.4): one-way takes BOTH or
        nothing, hedge needs LONG or SHORT (else -4061). The sandbox does not model hedge-mode legs, so in
        hedge mode it refuses LONG/SHORT orders too, saying so (nothing Binance would accept is filled wrong)."""
        if side is not None and side not in ("BOTH", "LONG", "SHORT"):
            raise invalid("positionSide")
        if not self.hedge:
            if side in ("LONG", "SHORT"):
                raise ApiError(-4061, "Order's position side does not match user's setting.")
            return
        if side in (None, "BOTH"):
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        raise ApiError(-1130, "Data sent for parameter 'positionSide' is not valid. The local sandbox does not "
                       "trade hedge-mode positions: POST /fapi/v1/positionSide/dual dualSidePosition=false.")

    def take_dirty(self) -> set[int]:
        dirty, self.dirty, self.touched = self.dirty, set(), False
        return dirty

    # ------------------------------------------------------------------------------------ lookups
    def wire_id(self, sim: SimOrder) -> int:
        if sim.is_algo:
            rec = self.algos.get(sim.order_id)
            return rec.actual_id if rec is not None and rec.actual_id else sim.order_id
        return sim.order_id

    def find_order(self, symbol: str, order_id: int | None, client_id: str | None) -> SimOrder | None:
        """A plain order (or the order a triggered algo placed) by wire id or client id."""
        ex = self.exchange
        if order_id is not None:
            rec = self.actual.get(order_id)
            if rec is not None:
                return rec.sim if rec.sim.symbol == symbol else None
            sim = ex.find_order(symbol, order_id=order_id)
            return None if sim is None or sim.is_algo else sim
        sim = ex.find_order(symbol, client_order_id=client_id) if client_id is not None else None
        if sim is None:
            return None
        if sim.is_algo:
            rec = self.algos.get(sim.order_id)
            return sim if rec is not None and rec.triggered else None
        return sim

    def find_algo(self, algo_id: int | None, client_algo_id: str | None) -> AlgoRecord | None:
        if algo_id is not None:
            return self.algos.get(algo_id)
        for rec in reversed(list(self.algos.values())):
            if rec.sim.client_order_id == client_algo_id:
                return rec
        return None

    def open_orders(self, symbol: str | None) -> list[SimOrder]:
        """Plain open orders, including those placed by triggered algo orders."""
        return [o for o in self._open(symbol) if not o.is_algo or self._triggered(o)]

    def open_algos(self, symbol: str | None) -> list[AlgoRecord]:
        recs = (self.algos.get(o.order_id) for o in self._open(symbol) if o.is_algo)
        return [r for r in recs if r is not None and not r.triggered]

    def all_orders(self, symbol: str) -> list[SimOrder]:
        return [o for o in self.exchange.all_orders(symbol) if not o.is_algo or self._triggered(o)]

    def _triggered(self, sim: SimOrder) -> bool:
        rec = self.algos.get(sim.order_id)
        return rec is not None and rec.triggered

    def _open(self, symbol: str | None) -> list[SimOrder]:
        ex = self.exchange
        if symbol is not None and symbol not in ex.symbols:
            return []
        return ex.open_orders(symbol)

    # ------------------------------------------------------------------------------------ algo
    def add_algo(self, sim: SimOrder, price_protect: bool) -> AlgoRecord:
        rec = AlgoRecord(sim, price_protect)
        self.algos[sim.order_id] = rec
        self.dirty.add(sim.order_id)
        self.touched = True
        return rec

    def mark_triggered(self, rec: AlgoRecord, ts: int) -> bool:
        """Give a just-triggered algo order its plain order id; False if it already had one."""
        if rec.triggered:
            return False
        rec.actual_id = self.next_actual_id
        self.next_actual_id += 1
        rec.trigger_time = ts
        rec.update_time = ts
        self.actual[rec.actual_id] = rec
        self.dirty.add(rec.algo_id)
        self.touched = True
        return True

    def pending_triggers(self) -> list[AlgoRecord]:
        """Algo orders the exchange triggered without filling yet (a STOP now resting as LIMIT)."""
        return [r for r in self.algos.values() if not r.triggered and r.sim.triggered and r.sim.is_open]
