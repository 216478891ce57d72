"""Act masks: a strategy says, vectorised over a backtest's whole history, on which klines ``on_kline`` may act.

A strategy opts in by defining ``act_mask(self)``, computed once after ``init()`` from its indicators::

    def act_mask(self):
        return crossed(self.fast_ema, self.slow_ema)   # an EMA cross can only act where the EMAs cross

The contract: where the mask is False, ``on_kline`` would emit no intent (no buy, sell, close, reduce,
stop move, target) and change no state a later kline reads, whatever the position. True is always safe
(it only costs a call), so a condition that depends on the position is ORed over the positions.
``mask[i]`` must depend only on klines up to ``i``, as indicators do.

What a backtest does with it (``Backtest(act_mask=...)``):

* ``"use"`` (default): ``on_kline`` is not called where the mask is False; and while no order rests on the
  exchange, the replay jumps ahead to the kline before the next True one, or before the next kline the
  exchange must process (a funding time, a liquidation level reached) when a position is open
  (:mod:`kinetic_empire.backtest.skip`). Results are identical when the contract holds.
* ``"verify"``: ``on_kline`` runs on every kline; one that emits an intent where the mask said False is a
  :class:`MaskFinding`, and the run ends with :class:`ActMaskError` naming the klines (like the lookahead check).
  It sees actions, not a change of the strategy's own state on such a kline (a counter, a stage): running the
  backtest both ways and comparing (``tests/unit/test_act_mask.py``) catches that too.
* ``"off"``: the mask is ignored.

Live runs ignore the mask and call ``on_kline`` on every kline: a live kline costs microseconds next to the
network, and a wrong mask must not be able to suppress a live trade. Under the contract calling it anyway
changes nothing, so live and backtest decisions are the same.

The helpers below read a series' whole array (:func:`whole`); they are for ``act_mask`` only, never for
``on_kline`` (where they would read the future).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import KineticError
from .series import Series, engine_array

if TYPE_CHECKING:
    from .base import Strategy
    from .runner import StrategyRunner

MODES = ("use", "verify", "off")


def whole(x: Series | np.ndarray | float) -> np.ndarray | float:
    """A series' values over the whole history as a float array (numbers and arrays pass through): for
    building a mask with numpy, e.g. ``whole(self.rsi) < self.oversold``."""
    return engine_array(x) if isinstance(x, Series) else x


def previous(x: Series | np.ndarray) -> np.ndarray:
    """The whole array shifted by one kline (``s[-2]`` at every kline); NaN at the first."""
    values = np.asarray(whole(x), dtype=np.float64)
    out = np.empty_like(values)
    out[:1] = np.nan
    out[1:] = values[:-1]
    return out


def crossed_above(a: Series | np.ndarray | float, b: Series | np.ndarray | float) -> np.ndarray:
    """True at every kline where :func:`~kinetic_empire.strategy.series.crossover` ``(a, b)`` is True:
    ``a[i-1] <= b[i-1] and a[i] > b[i]`` (NaN compares False; the first kline never crosses)."""
    av, bv = whole(a), whole(b)
    n = next(len(v) for v in (av, bv) if isinstance(v, np.ndarray))
    av = np.broadcast_to(np.asarray(av, dtype=np.float64), (n,))
    bv = np.broadcast_to(np.asarray(bv, dtype=np.float64), (n,))
    out = np.zeros(n, dtype=bool)
    if n > 1:
        with np.errstate(invalid="ignore"):
            out[1:] = (av[:-1] <= bv[:-1]) & (av[1:] > bv[1:])
    return out


def crossed_below(a: Series | np.ndarray | float, b: Series | np.ndarray | float) -> np.ndarray:
    """True where ``crossunder(a, b)`` is: ``a`` crossed below ``b``."""
    return crossed_above(b, a)


def crossed(a: Series | np.ndarray | float, b: Series | np.ndarray | float) -> np.ndarray:
    """True where ``a`` crossed ``b`` either way (``crossover | crossunder``)."""
    return crossed_above(a, b) | crossed_above(b, a)


class ActMaskError(KineticError):
    """A declared act mask is malformed, or (``verify``) said False where ``on_kline`` acted."""

    def __init__(self, message: str, findings: list[MaskFinding] | None = None) -> None:
        self.findings = findings or []
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class MaskFinding:
    """A kline the mask ruled out where ``on_kline`` emitted intents (``verify`` mode)."""

    strategy: str
    symbol: str
    index: int
    open_time: int
    intents: str

    def __str__(self) -> str:
        return (f"{self.strategy} on {self.symbol}, kline {self.index} (open time {self.open_time}): act_mask is "
                f"False but on_kline emitted {self.intents}")


def declared_mask(strategy: Strategy, length: int) -> np.ndarray | None:
    """The strategy's mask over a bound history of ``length`` klines as a bool array, or None when it declares
    none; a wrong shape or type is an :class:`ActMaskError` naming the strategy."""
    hook = getattr(strategy, "act_mask", None)
    if hook is None:
        return None
    where = f"{strategy.strategy_name()} on {strategy.symbol}: act_mask()"
    try:
        mask = hook()
    except Exception as exc:
        raise ActMaskError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise ActMaskError(f"{where} returned {arr.dtype} values; it must return booleans (a numpy bool array)")
    if arr.shape != (length,):
        raise ActMaskError(f"{where} returned shape {arr.shape}; expected ({length},), one value per kline")
    return arr


class MaskGate:
    """Stands between a backtest runner and its ``strategy.on_kline``: calls it only where the mask is True
    (``use``), or always while noting every masked-out kline where it tried to act (``verify``): emitted an
    intent, or asked for an entry the runner ignored (that still counts in ``entries_ignored``)."""

    def __init__(self, runner: StrategyRunner, mask: np.ndarray, open_time: np.ndarray, *, verify: bool) -> None:
        self.mask = mask
        self.findings: list[MaskFinding] = []
        self.calls_skipped = 0
        self.runner = runner
        self._open_time = open_time
        call = runner._strategy_on_kline  # the runner's one call into user code per kline
        flags = mask.tolist()  # python bools: the per-kline read is a list index
        cursor = runner.strategy._cursor
        if verify:
            def gate(kline: Any) -> None:
                i = cursor.i
                if flags[i]:
                    call(kline)
                    return
                before, ignored = len(runner._pending), runner.entries_ignored
                call(kline)
                if len(runner._pending) > before or runner.entries_ignored > ignored:
                    self._found(i, runner._pending[before:], runner.entries_ignored - ignored)
        else:
            def gate(kline: Any) -> None:
                if flags[cursor.i]:
                    call(kline)
                else:
                    self.calls_skipped += 1
        runner._strategy_on_kline = gate  # hook: see the runner's _on_replayed_kline

    def _found(self, i: int, intents: list[Any], ignored: int) -> None:
        shown = "; ".join(_describe(x) for x in intents)
        if ignored:
            shown += ("; " if shown else "") + f"{ignored} entry the runner ignored (already in that direction)"
        s = self.runner.strategy
        self.findings.append(MaskFinding(s.strategy_name(), s.symbol, i, int(self._open_time[i]), shown))


def _describe(intent: Any) -> str:
    action = getattr(intent, "action", None)
    if action is not None:
        return f"{type(intent).__name__} {getattr(action, 'value', action)}"
    kind = getattr(intent, "kind", None)
    return f"{type(intent).__name__}" + (f" {kind}" if kind else "")


def mask_error(findings: list[MaskFinding], limit: int = 10) -> ActMaskError:
    """The ``verify`` failure: how many klines, and the first ``limit`` of them."""
    shown = "\n  ".join(map(str, findings[:limit]))
    more = f"\n  ... and {len(findings) - limit} more" if len(findings) > limit else ""
    return ActMaskError(f"act mask check failed: on_kline acted on {len(findings)} kline(s) its act_mask ruled out "
                        f"(skipping them would change the results):\n  {shown}{more}", findings)


__all__ = [
    "MODES", "ActMaskError", "MaskFinding", "MaskGate", "crossed", "crossed_above", "crossed_below",
    "declared_mask", "mask_error", "previous", "whole",
]
