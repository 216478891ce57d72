"""The backtest's fused MARKET fill (``exchange.fast_fill``) against the general one, on the inputs its shortcuts
are proved for: quantities and prices of every exponent (positive ones, trailing zeros, more digits than the
context keeps), fills from flat, adds, reductions a reduce-only order trims, flips, with and without slippage.

Each script runs through the broker twice, once the general way (``submit``, ``Ledger._fill``) and once the fused
way, and every event (with its Decimals' exact digits), the liquidation levels after each step and the exchange's
whole exported state must be equal. The average fill price, which the fused fill divides only when it is read, is
compared read in a context of another precision and rounding too. The planted-bug tests show the comparison
fails when a shortcut is wrong in one digit.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal, localcontext
from typing import Any

import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.events import KlineClosed, OrderRequest
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange, fast_fill, fused_state
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.exchange.orders import SimOrder
from kinetic_empire.exchange.state import export_state
from tests.support.risk_fakes import all_brackets, all_rules

START = 1_704_067_200_000
MINUTE = 60_000
D = Decimal

# (side, quantity, reduce only) per step, a kline after each; quantities of every shape the fill's shortcuts see
_STEPS: list[tuple[Side, str, bool]] = [
    (Side.BUY, "1E+1", False),  # a positive exponent: quantity - 0 is 10, its digits change
    (Side.SELL, "10", True),  # back to a flat 0, exponent 0
    (Side.BUY, "0.100", False),  # trailing zeros, from a flat zero of exponent 0
    (Side.BUY, "2.5", False),  # an add
    (Side.SELL, "4E+2", True),  # a reduce-only order trimmed to the position (left partially filled: expires)
    (Side.SELL, "3.000", False),  # from flat 0.000: a short
    (Side.BUY, "1.23456789012345678901234567891", False),  # 30 digits: quantity - 0 is rounded to 28
    (Side.BUY, "7", False),  # a flip
    (Side.SELL, "12345678901234567890123456789E-27", False),  # 29 digits, rounded, a flip back
    (Side.SELL, "0.5", True),  # reduce-only onto a short: refused (-2022)
    (Side.BUY, "1E+2", True),  # trimmed to the short
    (Side.BUY, "5E-3", False),
    (Side.SELL, "5E-3", False),  # to flat at the last place
    (Side.BUY, "1.1E+1", False),
    (Side.BUY, "9.99", False),
    (Side.SELL, "20.99", True),  # closes it exactly
    (Side.BUY, "2.5", False),
    (Side.SELL, "2.5", False),  # flat at 0.0: a zero of exponent -1
    (Side.BUY, "1", False),  # from it: the entry's sum keeps that exponent (with a tick of 1E+1, digits change)
    (Side.SELL, "1", True),
]

# opens of the klines between steps: on the tick grid, off it, with trailing digits, large, small
_OPENS = [5.0, 5.0015, 5.1234, 4.9, 5.000000001, 12.0, 5.55, 5.0, 3.001, 7.777, 5.0, 4.1, 4.1, 6.0, 6.01, 6.0, 5.0,
          5.0, 5.0, 5.0]


# a long position of a positive exponent and one digit (what cancelling 28-digit quantities leaves), then a reduce-only
# order trimmed to it: ``executed_qty + qty`` is then 100 where the position is 1E+2 (no fees, the same open: the
# quantities are beyond what 8 places of money can hold in 28 digits; no brackets: beyond every cap)
_HUGE_STEPS: list[tuple[Side, str, bool]] = [
    (Side.BUY, "1234567890123456789012345678E+2", False),
    (Side.SELL, "1234567890123456789012345677E+2", False),
    (Side.SELL, "500", True),
    (Side.BUY, "12345678901234567890123456789", False),  # 29 digits, exponent 0: rounded to 28, exponent 1
    (Side.SELL, "12345678901234567890123456780", True),
]
_HUGE = {"steps": _HUGE_STEPS, "opens": [5.0] * len(_HUGE_STEPS), "brackets": {}}
# a tick of 1E+1: fill prices of exponent 1 (a first fill's Decimal(0) + notional then has other digits)
_TENS = {"rules": {**all_rules(), "FILUSDT": dataclasses.replace(all_rules()["FILUSDT"], tick_size=D("1E+1"),
                                                                 min_price=D("1E+1"))},
         "opens": [x * 100 for x in _OPENS]}  # fmt: skip


class _AskedClock:
    """A clock that is not a ReplayClock: the fused fill must ask it."""

    def __init__(self, start_ms: int) -> None:
        self.t = start_ms

    def now_ms(self) -> int:
        return self.t

    def advance_to(self, ts_ms: int) -> None:
        self.t = ts_ms + 7  # (a time of its own, not the kline's)


def _run(fused: bool, config: ExchangeConfig, clock_type: Callable[[int], Any] = ReplayClock,
         read: Callable[[SimOrder], Any] | None = None, steps: list[tuple[Side, str, bool]] = _STEPS,
         opens: list[float] = _OPENS, brackets: Any = None, rules: Any = None) -> tuple[list[str], Any, list[Any]]:
    bus = EventBus()
    events: list[str] = []
    bus.subscribe(object, lambda e: events.append(repr(e)))
    clock = clock_type(START)
    ex = SimulatedExchange(all_rules() if rules is None else rules, all_brackets() if brackets is None else brackets,
                           clock=clock,
                           emit=bus.publish, config=config, symbols=["FILUSDT"])  # fmt: skip
    if fused:
        ex.use_fused_orders()
    SimulatedBroker(bus, ex, clock, [("FILUSDT", "1m")])

    def levels() -> None:
        b = ex._books["FILUSDT"]
        events.append(repr((b.pos.qty, b.pos.entry, b.pos.qty_f, b.pos.entry_f, b.pos.liq_f, b.watch_low, b.watch_high,
                            b.next_funding, b.busy, ex._cross_positions, ex.wallet)))  # fmt: skip

    for i, ((side, qty, reduce_only), at) in enumerate(zip(steps, opens, strict=True)):
        bus.publish(OrderRequest(client_order_id=f"c{i}", intent_id="i", strategy_id="s", symbol="FILUSDT", side=side,
                                 order_type=OrderType.MARKET, quantity=D(qty), reduce_only=reduce_only,
                                 rules_checked=True, ts_event=clock.now_ms(), ts_init=clock.now_ms()))  # fmt: skip
        levels()
        t = START + (i + 1) * MINUTE
        clock.advance_to(t)
        bus.publish(KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=t, open=at, high=at * 1.01,
                                low=at * 0.99, close=at, volume=1.0, ts_event=t + MINUTE - 1, ts_init=clock.now_ms()),
                    ("FILUSDT", "1m"))  # fmt: skip
        levels()
    orders = list(ex._orders.values())
    reads = [read(o) for o in orders] if read is not None else []
    return events, export_state(ex), reads


def _same(config: ExchangeConfig, **kw: Any) -> None:
    general = _run(False, config, **kw)
    fused = _run(True, config, **kw)
    assert len(general[0]) > 10
    for i, (a, b) in enumerate(itertools.zip_longest(general[0], fused[0])):
        assert a == b, f"event {i} differs:\n general {a}\n fused   {b}"
    assert general[1] == fused[1]
    assert [repr(r) for r in general[2]] == [repr(r) for r in fused[2]]


CONFIGS = {
    "plain": ExchangeConfig(initial_balance=D(100_000)),
    "slippage": ExchangeConfig(initial_balance=D(100_000), slippage_bps=D(3)),
    "small wallet (leverage 20: liquidation levels)": ExchangeConfig(initial_balance=D(40)),
}
_HUGE_CONFIG = ExchangeConfig(initial_balance=D("1E+31"), maker_fee=D(0), taker_fee=D(0), funding_rate=D(0))
# (config, run options) per scenario
SCENARIOS: dict[str, tuple[ExchangeConfig, dict[str, Any]]] = {
    **{name: (config, {}) for name, config in CONFIGS.items()},
    "huge quantities (positive exponents)": (_HUGE_CONFIG, _HUGE),
    "a tick of 1E+1": (ExchangeConfig(initial_balance=D(10_000_000)), _TENS),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_quantities_and_prices_of_every_exponent_fill_the_same_both_ways(
        scenario: tuple[ExchangeConfig, dict[str, Any]]) -> None:
    config, options = scenario
    fills = [0]
    fill = fast_fill.fill_queued_market

    def counting(*args: Any) -> bool:
        done = fill(*args)
        fills[0] += done
        return done

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("kinetic_empire.exchange.matching.fill_queued_market", counting)
        _same(config, **options)
    assert fills[0] >= len(options.get("steps", _STEPS)) // 2, fills  # the fused fill took most of them


@pytest.mark.parametrize("rounding", [ROUND_FLOOR, ROUND_CEILING])
def test_in_another_rounding_the_fills_are_the_same_both_ways(rounding: str) -> None:
    """A run in a context rounding toward -inf (where 0 - 0 is -0: a zero fee's change keeps its sign) or +inf."""
    with localcontext() as ctx:
        ctx.rounding = rounding
        for config, options in SCENARIOS.values():
            _same(config, **options)


def test_a_clock_other_than_a_replay_clock_is_asked() -> None:
    """The fused fill reads a plain replay clock's time in place; any other clock is asked (``now_ms``)."""
    _same(CONFIGS["plain"], clock_type=_AskedClock)


def _odd_context_reads(o: SimOrder) -> tuple[Decimal, Decimal, Decimal]:
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        return o.avg_price, o.cum_quote, o.executed_qty


def test_the_average_price_read_in_another_context_is_the_one_the_fill_made() -> None:
    """The fused fill divides ``cum_quote / executed_qty`` when the average is first read: in the run's context,
    not the reader's (here 3 digits, rounding down: the general fill's 28-digit quotient must come back)."""
    _same(CONFIGS["plain"], read=_odd_context_reads)
    _events, _state, reads = _run(True, CONFIGS["plain"], read=_odd_context_reads)
    assert any(len(str(avg).replace(".", "").lstrip("0")) > 3 for avg, _, _ in reads)  # more digits than 3


def test_a_fused_market_order_reads_as_the_order_submit_makes() -> None:
    """Every field, the average price (a property over ``_avg``) included, before any fill."""
    made = fast_fill.new_market_order(7, "c7", "FILUSDT", Side.BUY, D("3"), False, 99)
    expected = SimOrder(order_id=7, client_order_id="c7", symbol="FILUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                        quantity=D("3"), price=None, trigger_price=None, time_in_force=None, reduce_only=False,
                        close_position=False, working_type=made.working_type, is_algo=False, time=99)  # fmt: skip
    for name in (*SimOrder.__slots__, "avg_price", "remaining", "is_open"):
        assert repr(getattr(made, name)) == repr(getattr(expected, name)), name


def _planted(module: Any, old: str, new: str, *more: tuple[str, str]) -> dict[str, Any]:
    """The module's namespace as it would be with ``old`` replaced by ``new`` in its source (a planted bug), and each
    further (old, new) pair of ``more``."""
    source = inspect.getsource(module)
    for was, now in ((old, new), *more):
        assert source.count(was) == 1, was
        source = source.replace(was, now)
    space: dict[str, Any] = {"__name__": module.__name__ + "_planted", "__package__": module.__package__}
    exec(compile(source, module.__file__, "exec"), space)
    return space


def _plant_fill(mp: pytest.MonkeyPatch, old: str, new: str) -> None:
    space = _planted(fast_fill, old, new)
    mp.setattr("kinetic_empire.exchange.matching.fill_queued_market", space["fill_queued_market"])


def _lazy_in_readers_context(self: SimOrder) -> Decimal:
    avg = self._avg
    if type(avg) is Context:
        avg = self._avg = self.cum_quote / self.executed_qty
    return avg  # type: ignore[return-value]


PLANTED: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "executed = qty for a trimmed reduce-only order too": lambda mp: _plant_fill(
        mp, "            unfilled = False\n", ""),
    "the average divided in the reader's context": lambda mp: mp.setattr(
        SimOrder, "avg_price", property(_lazy_in_readers_context, SimOrder.avg_price.fset)),
    "the clock read one late": lambda mp: _plant_fill(
        mp, "now = clock.time_ms if", "now = clock.time_ms + 1 if"),
    "a covered long's levels left open below": lambda mp: _plant_fill(
        mp, "= -INF\n            book.watch_high = INF\n        else:",
        "= 0.0\n            book.watch_high = INF\n        else:"),
    "a zero fee's change negated to -0": lambda mp: _plant_fill(
        mp, "change = -commission", "change = commission.copy_negate()"),
    "a first fill's cum_quote taken as the notional at any price exponent": lambda mp: _plant_fill(
        mp, "notional if unfilled and plain and", "notional if unfilled and"),
    "every tick's exponent taken as at most 0": lambda mp: mp.setattr(
        fused_state.FusedState, "_whole_tick", lambda self, rules: True),
    "a flat book's zero of another exponent taken as Decimal(0)": lambda mp: _plant_fill(
        mp, "(flat if pos.entry is ZERO", "(ZERO if pos.entry is ZERO"),
    "an uncovered long taken as covered": lambda mp: _plant_fill(
        mp, "and margin >= size * pos.entry_f:", "and margin >= 0.0:"),
}


@pytest.mark.parametrize("plant", list(PLANTED.values()), ids=list(PLANTED))
def test_planted_bugs_in_the_fused_fill_are_caught(plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    caught = 0
    for config, options in SCENARIOS.values():
        general = _run(False, config, read=_odd_context_reads, **options)
        with pytest.MonkeyPatch.context() as mp:
            plant(mp)
            fused = _run(True, config, read=_odd_context_reads, **options)
        caught += general != fused
    assert caught


# ----------------------------------------------------------------------- the margin check's float bound, digit by digit


def _boundary_sizes(edge: Decimal, wide: bool = True) -> list[Decimal]:
    """Quantities around ``edge``: its neighbours in 28 digits, and (``wide``) a relative 1e-14 .. 1e-10 either side
    (inside and outside the float bound's allowance)."""
    sizes = [edge]
    up = down = edge
    for _ in range(3):
        up, down = up.next_plus(), down.next_minus()
        sizes += [up, down]
    for rel in ("1E-14", "1E-13", "1E-12", "1E-11", "1E-10") if wide else ():
        sizes += [edge * (1 + D(rel)), edge * (1 - D(rel))]
    return sizes


def _answers(fused: bool, sizes: list[Decimal], leverage: int, wallet: Decimal, price: float) -> list[Any]:
    out: list[Any] = []
    for qty in sizes:
        ex = SimulatedExchange(all_rules(), all_brackets(), clock=ReplayClock(START), emit=lambda e: None,
                               symbols=["FILUSDT"], config=ExchangeConfig(initial_balance=wallet))  # fmt: skip
        ex.set_leverage("FILUSDT", leverage)
        ex.use_fused_orders()
        ex.on_bar("FILUSDT", START, price, price, price, price)
        try:
            if fused:
                fast_fill.accept_market(ex, ex._fused, "FILUSDT", Side.BUY, qty, False, "c")  # type: ignore[arg-type]
            else:
                ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=qty,
                          client_order_id="c", rules_checked=True)  # fmt: skip
            out.append(("accepted", qty))
        except ExchangeError as exc:
            out.append((exc.code, qty))
    return out


_PRICES = (5.123, 0.3317, 47.91, 1.001, 3.3333, 9.87654, 12.5, 0.0071, 2.718, 6.02, 0.999, 31.4159)


def _edge_cases(prices: tuple[float, ...] = (5.123,)) -> list[tuple[str, int, Decimal, float, Decimal, int]]:
    """(kind, leverage, wallet, price, the edge quantity, the code beyond it) for a flat entry at each price."""
    fee = ExchangeConfig().taker_fee
    cases = []
    for leverage, at in itertools.product((1, 20, 50), prices):
        price = D(repr(at))
        wallet = D(1000)
        with localcontext() as ctx:
            ctx.prec = 28
            edge = wallet / (price / leverage + price * fee)  # where the margin and the fee use up the wallet
            cap = all_brackets()["FILUSDT"].max_notional(leverage)
            cases.append(("wallet", leverage, wallet, at, edge, -2019))
            cases.append(("cap", leverage, D("1E+12"), at, cap / price, -2027))  # (a wallet that covers it)
    return cases


@pytest.mark.parametrize("case", _edge_cases(), ids=lambda c: f"{c[0]}-x{c[1]}")
def test_the_fused_margin_check_answers_as_the_general_one_to_the_last_digit(
        case: tuple[str, int, Decimal, float, Decimal, int]) -> None:
    """A flat entry on one cross book is first judged in floats (``FusedState.flat_entry_fits``): quantities one
    unit in the 28th digit either side of where the Decimal check turns, and within the float bound's allowance,
    are accepted or refused exactly as ``submit`` does."""
    _kind, leverage, wallet, at, edge, code = case
    sizes = _boundary_sizes(edge)
    general = _answers(False, sizes, leverage, wallet, at)
    assert general == _answers(True, sizes, leverage, wallet, at)
    codes = [a[0] for a in general]
    assert "accepted" in codes and code in codes, codes  # both sides of the edge


# (removing one of the two allowances of the margin's comparison is no bug: either covers the estimate's error)
MARGIN_PLANTS = {
    "no allowance on the notional": (("n * (1.0 + 1e-12) + 1e-290 < cap[1] * (1.0 - 1e-12)", "n < cap[1]"),),
    "no allowance on the margin": (("bound = margin + charge + 1e-12 * (margin + abs(charge)) + 1e-290",
                                    "bound = margin + charge"),
                                   ("bound < wallet_f - 1e-12 * abs(wallet_f)", "bound < wallet_f")),
}


@pytest.mark.parametrize("plant", list(MARGIN_PLANTS.values()), ids=list(MARGIN_PLANTS))
def test_planted_bugs_in_the_margin_bound_are_caught(plant: tuple[tuple[str, str], ...]) -> None:
    """The float estimate of a quantity a few units in the 28th digit from the edge falls on either side of it
    depending on how the floats round: over a dozen prices some land on the wrong side when nothing is allowed."""
    space = _planted(fused_state, *plant[0], *plant[1:])
    caught = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fused_state.FusedState, "flat_entry_fits", space["FusedState"].flat_entry_fits)
        for _kind, leverage, wallet, at, edge, _code in _edge_cases(_PRICES):
            sizes = _boundary_sizes(edge, wide=False)
            caught += _answers(False, sizes, leverage, wallet, at) != _answers(True, sizes, leverage, wallet, at)
    assert caught
