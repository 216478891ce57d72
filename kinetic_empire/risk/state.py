"""Trading state: ACTIVE, REDUCING (only reduce/close), HALTED (nothing), account-wide and per symbol.

The effective state is the worst of several independent sources, so one source lifting does not
lift another: the operator's (or config's) state, the daily-loss latch (until the next UTC day), the
drawdown latch (until a human reset), entry pauses held by the engine (a stale market feed) and
per-symbol loss-streak cooldowns. Every change of an
effective state is published as a TradingStateChanged with the cause that made it.

Expiries are checked lazily (on intents and account events) rather than per kline, so an expiry is
announced at the first event after it, with the clock's time of that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.enums import TradingState
from .guards import Denial, deny

_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_ACTIVE = TradingState.ACTIVE  # (read once: an enum class's attribute is a slow lookup, and this one is per order)
DAY_MS = 86_400_000

Publish = Callable[[TradingState, TradingState, str, "str | None"], None]


def worst(a: TradingState, b: TradingState) -> TradingState:
    return a if _RANK[a] >= _RANK[b] else b


class TradingStates:
    """The state sources and what they add up to; ``publish(state, previous, cause, symbol)``."""

    def __init__(self, initial: TradingState, symbol_states: Mapping[str, TradingState], publish: Publish) -> None:
        self._publish = publish
        self.operator = initial
        self.operator_symbol: dict[str, TradingState] = dict(symbol_states)
        self.daily_until_ms: int | None = None
        self.daily_denial: Denial | None = None
        self.drawdown_denial: Denial | None = None
        self.cooldown_until: dict[str, int] = {}
        self.pauses: dict[str, str] = {}  # who paused entries -> why
        self._shown = TradingState.ACTIVE
        self._shown_symbol: dict[str, TradingState] = {}
        self.calm = self._calm()
        """No source holds anything (every symbol ACTIVE, no entry held): kept by :meth:`sync`, which every change
        ends with, for the backtest's fast path (``risk.fast_path``), which reads it on every order."""

    def _calm(self) -> bool:
        return (self.operator is _ACTIVE and not self.operator_symbol and self.drawdown_denial is None
                and self.daily_denial is None and not self.cooldown_until and not self.pauses)

    # ------------------------------------------------------------------------------------ reading
    def account(self) -> TradingState:
        state = self.operator
        if self.daily_denial is not None or self.drawdown_denial is not None or self.pauses:
            state = worst(state, TradingState.REDUCING)
        return state

    def symbol_own(self, symbol: str) -> TradingState:
        state = self.operator_symbol.get(symbol, TradingState.ACTIVE)
        if symbol in self.cooldown_until:
            state = worst(state, TradingState.REDUCING)
        return state

    def effective(self, symbol: str) -> TradingState:
        if (self.operator is _ACTIVE and not self.operator_symbol and self.drawdown_denial is None
                and self.daily_denial is None and not self.cooldown_until and not self.pauses):
            return _ACTIVE  # no source holds anything (what the full answer gives), cheaply
        return worst(self.account(), self.symbol_own(symbol))

    def entry_denial(self, symbol: str) -> Denial | None:
        """Why an entry on ``symbol`` may not pass now, naming the most specific cause."""
        if (self.operator is _ACTIVE and not self.operator_symbol and self.drawdown_denial is None
                and self.daily_denial is None and not self.cooldown_until and not self.pauses):
            return None  # nothing holds entries (every check below would pass): the common case, cheaply
        if self.operator is TradingState.HALTED or self.operator_symbol.get(symbol) is TradingState.HALTED:
            return deny("TRADING_HALTED", symbol=symbol)
        if self.drawdown_denial is not None:
            return _restate(self.drawdown_denial, symbol)
        if self.daily_denial is not None:
            return _restate(self.daily_denial, symbol, until_ms=self.daily_until_ms)
        until = self.cooldown_until.get(symbol)
        if until is not None:
            return deny("LOSS_STREAK_COOLDOWN", symbol=symbol, until_ms=until)
        if self.pauses:
            source, cause = next(iter(self.pauses.items()))
            return deny("ENTRIES_PAUSED", symbol=symbol, by=source, cause=cause.replace(" ", "_"))
        if self.effective(symbol) is not TradingState.ACTIVE:
            return deny("TRADING_REDUCING", symbol=symbol)
        return None

    # ------------------------------------------------------------------------------------ changing
    def set_operator(self, state: TradingState, cause: str, symbol: str | None = None) -> None:
        if symbol is None:
            self.operator = state
        else:
            self.operator_symbol[symbol] = state
        self.sync(cause, symbol)

    def pause(self, source: str, cause: str) -> None:
        self.pauses[source] = cause
        self.sync(cause)

    def resume(self, source: str, cause: str) -> None:
        if self.pauses.pop(source, None) is not None:
            self.sync(cause)

    def latch_daily(self, denial: Denial, until_ms: int) -> None:
        self.daily_denial, self.daily_until_ms = denial, until_ms
        self.sync(denial.message)

    def latch_drawdown(self, denial: Denial) -> None:
        self.drawdown_denial = denial
        self.sync(denial.message)

    def reset_drawdown(self, cause: str) -> None:
        self.drawdown_denial = None
        self.sync(cause)

    def start_cooldown(self, symbol: str, until_ms: int, cause: str) -> None:
        self.cooldown_until[symbol] = until_ms
        self.sync(cause, symbol)

    def expire(self, now_ms: int) -> None:
        """Lift the daily-loss latch on a new UTC day and cooldowns whose time has come."""
        if self.daily_until_ms is not None and now_ms >= self.daily_until_ms:
            self.daily_denial = self.daily_until_ms = None
            self.sync("daily loss limit reset: new UTC day")
        if self.cooldown_until:
            for symbol, until in list(self.cooldown_until.items()):
                if now_ms >= until:
                    del self.cooldown_until[symbol]
                    self.sync("loss streak cooldown over", symbol)

    def sync(self, cause: str, symbol: str | None = None) -> None:
        """Publish the account state (and ``symbol``'s own state) if it differs from the last one shown."""
        self.calm = self._calm()  # (first: a reader of what is published may ask)
        now = self.account()
        if now is not self._shown:
            previous, self._shown = self._shown, now
            self._publish(now, previous, cause, None)
        if symbol is not None:
            own = self.symbol_own(symbol)
            shown = self._shown_symbol.get(symbol, TradingState.ACTIVE)
            if own is not shown:
                self._shown_symbol[symbol] = own
                self._publish(own, shown, cause, symbol)

    def announce_initial(self, cause: str) -> None:
        """Publish the configured starting states that are not ACTIVE."""
        self.sync(cause)
        for symbol in self.operator_symbol:
            self.sync(cause, symbol)


def _restate(latched: Denial, symbol: str, **extra: object) -> Denial:
    """The latched guard's denial, for an intent on ``symbol``: same code, same values."""
    head = deny(latched.code, symbol=symbol, **extra).message
    values = latched.message.partition(" ")[2]
    return Denial(latched.code, f"{head} {values}".rstrip())
