"""The risk gate's commands that do not start from a strategy: re-place protection, close, flatten, cancel all.

Reconciliation, shutdown and (next) the operator API need to place and cancel orders too. They do it
here, never by calling the execution port: a flatten becomes CLOSE intents that the risk manager turns
into reduce-only market orders like a strategy's (rounded to the market step, split at the maximum,
checked against the filters); a cancel-all is a :class:`CancelAllRequest` command; a re-placed stop is
checked against the position and the tick grid before it goes out; a position whose stop the venue refuses
because the price is already through it is closed by one CLOSE intent (:meth:`RiskCommands.close_position`,
used by :mod:`.guard`). Everything travels on the bus, so the
journal records (and commits) each command before the execution port sends it.

Client ids are unique for the life of a run, across restarts: the ids this module makes (re-placed
protection ``...-rpN``, flatten intents) skip every id already taken, and a resumed run first learns
the journal's ids (:meth:`RiskCommands.restore_ids`), so no in-process counter starts over.

The door for outside commands is the :class:`OperatorCommand` event: publish one and this handler does
the rest, with the same checks and the same journal as every order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..core.account import AccountView
from ..core.clock import Clock
from ..core.enums import IntentAction, OrderType, Side, TradingState
from ..core.events import CancelAllRequest, OperatorCommand, OrderIntent, OrderRequest, RiskDenied
from ..core.rules import SymbolRules
from . import ids
from .guards import Denial, deny

FLATTEN = "flatten"
CANCEL_ALL = "cancel_all"
ACTIONS = (FLATTEN, CANCEL_ALL)
REPLACED = "rp"  # client id suffix of a re-placed protective order
_PROTECTIVE = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET)


class TradingSwitch(Protocol):
    """What the commands need of the risk manager: its states and its book of protective orders."""

    @property
    def state(self) -> TradingState: ...

    def state_of(self, symbol: str) -> TradingState: ...

    def set_state(self, state: TradingState, cause: str, symbol: str | None = None) -> None: ...

    def track_protective_order(self, symbol: str, client_id: str, strategy_id: str) -> None: ...


class RiskCommands:
    """Protect, flatten and cancel all, through the bus and the risk gate."""

    def __init__(
        self,
        publish: Callable[[Any], None],
        clock: Clock,
        account: AccountView,
        rules: Mapping[str, SymbolRules],
        switch: TradingSwitch,
        *,
        symbols: Sequence[str] = (),
        id_prefix: str = "cmd",
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._account = account
        self._rules = rules
        self._switch = switch
        self.symbols = tuple(symbols) or tuple(rules)
        self.id_prefix = id_prefix
        self._taken: set[str] = set()  # every client and intent id made here or found in the journal
        self._flattens = 0

    def restore_ids(self, ids: Iterable[str]) -> None:
        """A resumed run: the journal's client and intent ids, which no new command may reuse."""
        self._taken.update(ids)

    def _fresh(self, make: Callable[[int], Sequence[str]], start: int = 0) -> int:
        """The first number from ``start`` whose ids (``make(n)``) are all unused; they are taken."""
        n = start
        while any(i in self._taken for i in make(n)):
            n += 1
        self._taken.update(make(n))
        return n
    # ------------------------------------------------------------------------------ the outside door
    def on_command(self, command: OperatorCommand) -> None:
        """Bus handler: an operator (or shutdown) command, already journaled by the time it gets here."""
        symbols = command.symbols or self.symbols
        now = self._clock.now_ms()
        unknown = [s for s in symbols if s not in self._rules]
        if command.action not in ACTIONS or unknown:
            denial = (deny("UNKNOWN_COMMAND", action=command.action) if command.action not in ACTIONS
                      else deny("UNKNOWN_SYMBOL", symbol=",".join(unknown)))
            self._deny(f"{command.source}-{command.action}", command.source, ",".join(symbols), denial, now)
            return
        if command.action == FLATTEN:
            self.flatten(symbols, source=command.source, cause=command.cause, whole_account=not command.symbols)
        else:
            self.cancel_all(symbols, source=command.source, cause=command.cause)

    # ------------------------------------------------------------------------------ operations
    def cancel_all(self, symbols: Iterable[str], *, source: str, cause: str = "") -> None:
        """One journaled :class:`CancelAllRequest` per symbol (plain and conditional orders)."""
        now = self._clock.now_ms()
        for symbol in symbols:
            self._publish(CancelAllRequest(symbol=symbol, strategy_id=source, cause=cause, ts_event=now, ts_init=now))

    def flatten(
        self, symbols: Iterable[str], *, source: str, cause: str = "", whole_account: bool = False
    ) -> list[str]:
        """Cancel every order and close every position on ``symbols``; returns the CLOSE intents' ids.

        Entries stop first (REDUCING, account-wide or per symbol), so no strategy reopens what is being
        closed; a HALTED state (account or symbol) is lowered to REDUCING, since a halt refuses closes too
        and a flatten is the explicit wish to close. The closes are CLOSE intents: the risk manager sizes,
        rounds and checks them.
        """
        symbols = list(symbols)
        why = f"FLATTEN by {source}" + (f": {cause}" if cause else "")
        if whole_account or self._switch.state is TradingState.HALTED:
            self._switch.set_state(TradingState.REDUCING, why)
        for symbol in symbols:
            if not whole_account or self._switch.state_of(symbol) is TradingState.HALTED:
                self._switch.set_state(TradingState.REDUCING, why, symbol)
        self.cancel_all(symbols, source=source, cause=why)
        now = self._clock.now_ms()
        n = self._flattens = self._fresh(
            lambda k: [self._flatten_id(now, k, sym) for sym in symbols], self._flattens + 1)
        intents = []
        for symbol in symbols:
            pos = self._account.position(symbol)
            if pos.quantity == 0:
                continue
            price = self._account.last_price(symbol) or float(pos.entry_price)
            intent = OrderIntent(intent_id=self._flatten_id(now, n, symbol), strategy_id=source,
                                 symbol=symbol, action=IntentAction.CLOSE, reference_price=price, tag=why,
                                 ts_event=now, ts_init=now)
            intents.append(intent.intent_id)
            self._publish(intent)  # the risk manager decides it like any strategy's CLOSE
        return intents

    def replace_protection(self, last: OrderRequest) -> OrderRequest | None:
        """Re-place a missing stop or take-profit from the last request of its kind; None if denied.

        The gate: a known symbol not HALTED, a position the order closes, and a trigger price on the
        tick grid. A new client id (``...-rpN``, the first N no order of the run has used, restarts
        included) keeps the venue from refusing it as a duplicate.
        """
        now = self._clock.now_ms()
        denial = self._protection_denial(last)
        if denial is not None:
            self._deny(last.intent_id, last.strategy_id, last.symbol, denial, now)
            return None
        base = last.client_order_id.rsplit(f"-{REPLACED}", 1)[0]
        cid = ids.client_id(base, REPLACED, self._fresh(lambda k: [ids.client_id(base, REPLACED, k)]))
        request = replace(last, client_order_id=cid, ts_event=now, ts_init=now)
        if not last.close_position:  # a moved or trailing stop covers the position as it is now
            rules = self._rules[last.symbol]
            size = abs(self._account.position(last.symbol).quantity)
            request = replace(request, quantity=max(rules.round_qty_up(size, market=True), rules.market_min_qty))
        self._switch.track_protective_order(last.symbol, cid, last.strategy_id)
        self._publish(request)
        return request

    def close_position(self, symbol: str, *, source: str, cause: str) -> str | None:
        """Close ``symbol``'s position at market now: one CLOSE intent (tagged with ``cause``), decided by the risk
        manager like a strategy's (reduce-only, market step, split at the maximum); None when flat.

        Unlike :meth:`flatten` it leaves the trading state and other orders alone: the position closes, the
        strategy trades on. A HALTED symbol stays halted (the gate denies the close, the denial says so).
        """
        pos = self._account.position(symbol)
        if pos.quantity == 0:
            return None
        now = self._clock.now_ms()
        n = self._fresh(lambda k: [self._close_id(now, k, symbol)], 1)
        price = self._account.last_price(symbol) or float(pos.entry_price)
        intent = OrderIntent(intent_id=self._close_id(now, n, symbol), strategy_id=source, symbol=symbol,
                             action=IntentAction.CLOSE, reference_price=price, tag=cause, ts_event=now, ts_init=now)
        self._publish(intent)  # journaled, then the risk manager turns it into reduce-only market orders
        return intent.intent_id

    # ------------------------------------------------------------------------------ helpers
    def _close_id(self, now: int, n: int, symbol: str) -> str:
        return f"{self.id_prefix}-pc{_base36(now)}{n}-{symbol}"

    def _flatten_id(self, now: int, n: int, symbol: str) -> str:
        return f"{self.id_prefix}-fl{_base36(now)}{n}-{symbol}"

    def _protection_denial(self, r: OrderRequest) -> Denial | None:
        rules = self._rules.get(r.symbol)
        if rules is None:
            return deny("UNKNOWN_SYMBOL", symbol=r.symbol)
        if self._switch.state_of(r.symbol) is TradingState.HALTED:
            return deny("TRADING_HALTED", symbol=r.symbol)
        trailing = r.order_type is OrderType.TRAILING_STOP_MARKET
        if (r.order_type not in _PROTECTIVE or not (r.close_position or r.reduce_only)
                or (r.trigger_price is None and not trailing)):
            return deny("NOT_PROTECTIVE", symbol=r.symbol, order_type=r.order_type.value)
        qty = self._account.position(r.symbol).quantity
        if qty == 0 or (qty > 0) != (r.side is Side.SELL):
            return deny("NO_POSITION", symbol=r.symbol, side=r.side.value, position=qty)
        bad = None if r.trigger_price is None else rules.check_price(r.trigger_price, "stopPrice")
        if bad is not None:
            return deny(bad.code, symbol=r.symbol, trigger=r.trigger_price, tick=rules.tick_size)
        return None

    def _deny(self, intent_id: str, strategy_id: str, symbol: str, denial: Denial, now: int) -> None:
        self._publish(RiskDenied(intent_id=intent_id, strategy_id=strategy_id, symbol=symbol, code=denial.code,
                                 message=denial.message, ts_event=now, ts_init=now))


def _base36(n: int) -> str:
    """Short, increasing: command ids of a resumed run never repeat an earlier run's."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


__all__ = ["ACTIONS", "CANCEL_ALL", "FLATTEN", "RiskCommands", "TradingSwitch"]

