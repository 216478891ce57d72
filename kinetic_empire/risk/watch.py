"""Account watches: the guards that follow the account over time rather than judge one intent.

- :class:`EquityWatch`: the daily-loss limit (counted from the equity the UTC day started with) and
  the maximum drawdown (from the peak equity). A breach latches a trading state (REDUCING until the
  next UTC day, or until a human reset); the latch, not the watch, then denies entries.
- :class:`LossStreak`: consecutive losing round trips on a symbol start a cooldown for that symbol.

Both run on account events (fills, position and balance changes) and intents, never per kline;
time-based expiries (new UTC day, cooldown end) are noticed at the first such event after them.
"""

from __future__ import annotations

from decimal import Decimal

from ..core.account import AccountView
from ..core.events import Liquidated, OrderFilled
from . import guards
from .config import GuardsConfig, LossStreakConfig
from .guards import fmt
from .state import DAY_MS, TradingStates

ZERO = Decimal(0)


class EquityWatch:
    """Daily-loss and drawdown latches; with neither configured, :meth:`observe` only lifts expiries."""

    def __init__(self, account: AccountView, config: GuardsConfig, states: TradingStates) -> None:
        self._account = account
        self._config = config
        self._states = states
        self.enabled = config.daily_loss_limit_pct is not None or config.max_drawdown_pct is not None
        self._day = -1
        self._day_start_equity = ZERO
        self._peak_equity: Decimal | None = None

    def observe(self, now: int) -> None:
        """Lift expired latches; with a daily-loss or drawdown limit, check equity against them."""
        states = self._states
        states.expire(now)
        if not self.enabled:
            return
        equity = self._account.equity()
        g = self._config
        day = now // DAY_MS
        if day != self._day:
            self._day, self._day_start_equity = day, equity
        if self._peak_equity is None or equity > self._peak_equity:
            self._peak_equity = equity
        if states.daily_denial is None:
            denial = guards.daily_loss(self._day_start_equity, equity, g.daily_loss_limit_pct)
            if denial is not None:
                states.latch_daily(denial, (day + 1) * DAY_MS)
        if states.drawdown_denial is None:
            denial = guards.max_drawdown(self._peak_equity, equity, g.max_drawdown_pct)
            if denial is not None:
                states.latch_drawdown(denial)

    def restore_day_start(self, day: int, equity: Decimal) -> None:
        """The daily-loss guard counts from the equity the day started with, not from a restart."""
        if self.enabled:
            self._day, self._day_start_equity = day, equity

    def reset_drawdown(self, cause: str) -> None:
        """The human reset: lift the drawdown halt and restart the peak from the current equity."""
        self._peak_equity = self._account.equity()
        self._states.reset_drawdown(cause)


class LossStreak:
    """Net PnL of each symbol's open round trip, and its count of consecutive losing trips."""

    def __init__(self, config: LossStreakConfig, states: TradingStates) -> None:
        self._config = config
        self._states = states
        self._trade_pnl: dict[str, Decimal] = {}
        self._last_qty: dict[str, Decimal] = {}
        self._streak: dict[str, int] = {}

    def on_fill(self, fill: OrderFilled) -> None:
        fee = fill.commission if fill.commission_asset == "USDT" else ZERO  # a BNB fee is not USDT (no conversion)
        self._trade_pnl[fill.symbol] = self._trade_pnl.get(fill.symbol, ZERO) + fill.realized_pnl - fee

    def on_liquidated(self, event: Liquidated) -> None:
        self._trade_pnl[event.symbol] = self._trade_pnl.get(event.symbol, ZERO) + event.realized_pnl - event.fee

    def on_position(self, symbol: str, quantity: Decimal, now: int) -> None:
        """A round trip ends when the position goes flat or flips side."""
        previous = self._last_qty.get(symbol, ZERO)
        self._last_qty[symbol] = quantity
        if previous != 0 and (quantity == 0 or (quantity > 0) != (previous > 0)):
            self._trade_closed(symbol, now)

    def _trade_closed(self, symbol: str, now: int) -> None:
        cfg = self._config
        pnl = self._trade_pnl.pop(symbol, ZERO)
        losses = self._streak.get(symbol, 0) + 1 if pnl < 0 else 0
        if losses >= cfg.losses:
            until = now + int(cfg.cooldown_minutes * 60_000)
            self._streak[symbol] = 0
            cause = f"LOSS_STREAK symbol={symbol} losses={losses} cooldown_minutes={fmt(cfg.cooldown_minutes)}"
            self._states.start_cooldown(symbol, until, cause)
        else:
            self._streak[symbol] = losses
