"""The fused margin check of a flat entry with several books (issue 17 target 4): ``FusedState.flat_entry_fits``
bounds what the order needs in floats and hands it to ``Margin.covers_float``, the float bound of the available
balance over every book; the Decimal check decides whenever either bound is unsure. Entries sized a few units in
the 28th digit (and 1e-14 .. 1e-10) either side of the available balance and of the bracket's cap must be accepted
or refused (-2019, -2027) exactly as ``submit`` does, whatever the other books hold: longs, shorts, an isolated
position, marks, queued MARKET orders and resting LIMIT orders, on other books and on the entry's own; a wallet
changed since the last fill's solve read it; one book with orders or isolated (the one-book shortcut must not
apply). Planted bugs in either bound are caught."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from decimal import Decimal as D
from decimal import localcontext
from typing import Any

import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import MarginType, OrderType, Side, TimeInForce
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange, fast_fill, fused_state, margin
from tests.support.risk_fakes import all_brackets, all_rules

START = 1_704_067_200_000
MINUTE = 60_000
TARGET = "FILUSDT"
AT = 5.123  # the target's price
PRICES = {TARGET: AT, "NEARUSDT": 1.2, "ETHUSDT": 1800.0, "DOGEUSDT": 0.07}
Ex = SimulatedExchange


def _market(ex: Ex, symbol: str, side: Side, qty: str) -> None:
    ex.submit(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=D(qty))


def _limit(ex: Ex, symbol: str, qty: str, below: float) -> None:
    price = all_rules()[symbol].round_price_nearest(D(repr(PRICES[symbol] * below)))
    ex.submit(symbol=symbol, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D(qty), price=price,
              time_in_force=TimeInForce.GTC)


def _bar(ex: Ex, minute: int, moves: dict[str, float] | None = None) -> None:
    for sym in ex._books:
        p = PRICES[sym] * (moves or {}).get(sym, 1.0)
        ex.on_bar(sym, START + minute * MINUTE, p, p, p, p)


def _positions(ex: Ex, orders: list[tuple[str, Side, str]], moves: dict[str, float] | None = None) -> None:
    for sym, side, qty in orders:
        _market(ex, sym, side, qty)
    _bar(ex, 1, moves)  # filled at the next open, the prices moved (a PnL on each)


def longs(ex: Ex) -> None:
    ex.set_leverage("NEARUSDT", 1)  # (and ETHUSDT at the default leverage)
    _positions(ex, [("NEARUSDT", Side.BUY, "400"), ("ETHUSDT", Side.BUY, "0.2")], {"NEARUSDT": 1.03, "ETHUSDT": 0.97})


def shorts(ex: Ex) -> None:
    ex.set_leverage("NEARUSDT", 5)
    _positions(ex, [("NEARUSDT", Side.SELL, "700"), ("ETHUSDT", Side.BUY, "0.3")], {"NEARUSDT": 1.02})


def isolated(ex: Ex) -> None:
    ex.set_margin_type("ETHUSDT", MarginType.ISOLATED)
    ex.set_leverage("ETHUSDT", 3)
    _positions(ex, [("ETHUSDT", Side.BUY, "0.5"), ("NEARUSDT", Side.BUY, "300")], {"ETHUSDT": 1.01})
    ex.modify_isolated_margin("ETHUSDT", D("37.12345678"), add=True)


def queued(ex: Ex) -> None:
    longs(ex)
    _market(ex, "NEARUSDT", Side.BUY, "150")  # queued for the next price
    _market(ex, "DOGEUSDT", Side.SELL, "4000")
    _market(ex, "ETHUSDT", Side.SELL, "0.1")  # (reducing: no margin of its own)


def resting(ex: Ex) -> None:
    shorts(ex)
    _limit(ex, "DOGEUSDT", "5000", 0.9)
    _limit(ex, "ETHUSDT", "0.25", 0.8)


def marks(ex: Ex) -> None:
    queued(ex)
    resting(ex)
    ex._books["NEARUSDT"].mark = 1.2 * 1.013
    ex._books["ETHUSDT"].mark = 1800.0 * 0.991


def own_orders(ex: Ex) -> None:
    longs(ex)
    _market(ex, TARGET, Side.BUY, "20")  # the entry's own book, flat, with a queued order...
    _limit(ex, TARGET, "30", 0.95)  # ...and a resting one


def target_isolated(ex: Ex) -> None:
    ex.set_margin_type(TARGET, MarginType.ISOLATED)
    longs(ex)


def wallet_moved(ex: Ex) -> None:
    """Covered longs: the fills' short solve (Cover.after_fill) read the wallet; then it changes."""
    longs(ex)
    _market(ex, "DOGEUSDT", Side.BUY, "3000")
    _bar(ex, 2)
    ex.wallet = ex.wallet - D("2.5")  # (another Decimal: a float read before is not its float)


def unit_longs(ex: Ex) -> None:
    """Longs at leverage 1 that the wallet covers, no order, no isolated wallet: the bound takes their entry
    notional from the liquidation solve's Cover instead of summing every book."""
    for sym in ("NEARUSDT", "ETHUSDT", "DOGEUSDT"):
        ex.set_leverage(sym, 1)
    _positions(ex, [("NEARUSDT", Side.BUY, "400"), ("ETHUSDT", Side.BUY, "0.2"), ("DOGEUSDT", Side.BUY, "3000")],
               {"NEARUSDT": 1.03, "ETHUSDT": 0.97, "DOGEUSDT": 1.1})
    cover = ex._cover
    assert cover is not None and cover.terms is not None and cover.unit


def unit_longs_queued(ex: Ex) -> None:
    unit_longs(ex)
    _market(ex, "NEARUSDT", Side.BUY, "150")


def unit_longs_isolated_wallet(ex: Ex) -> None:
    ex.set_margin_type(TARGET, MarginType.ISOLATED)
    unit_longs(ex)
    ex._books[TARGET].pos.iso_wallet = D("123.45678901")  # (a wallet left flat, as a restored state may hold)


def one_book_orders(ex: Ex) -> None:
    _market(ex, TARGET, Side.BUY, "20")
    _limit(ex, TARGET, "30", 0.95)


def one_book_isolated(ex: Ex) -> None:
    ex.set_margin_type(TARGET, MarginType.ISOLATED)
    ex._books[TARGET].pos.iso_wallet = D("123.45678901")  # (a wallet left flat, as a restored state may hold)


SCENES: dict[str, tuple[Callable[[Ex], None], bool]] = {  # name: (setup, several books)
    "longs": (longs, True), "shorts": (shorts, True), "isolated": (isolated, True), "queued": (queued, True),
    "resting": (resting, True), "marks": (marks, True), "own orders": (own_orders, True),
    "target isolated": (target_isolated, True), "wallet moved": (wallet_moved, True),
    "leverage-1 longs": (unit_longs, True), "leverage-1 longs, queued": (unit_longs_queued, True),
    "leverage-1 longs, isolated wallet": (unit_longs_isolated_wallet, True),
    "one book with orders": (one_book_orders, False), "one book isolated": (one_book_isolated, False),
}  # fmt: skip


def _exchange(scene: str, leverage: int, wallet: D) -> Ex:
    setup, several = SCENES[scene]
    ex = SimulatedExchange(all_rules(), all_brackets(), clock=ReplayClock(START), emit=lambda e: None,
                           symbols=list(PRICES) if several else [TARGET],
                           config=ExchangeConfig(initial_balance=wallet))  # fmt: skip
    ex.use_fused_orders()
    _bar(ex, 0)
    setup(ex)
    ex.set_leverage(TARGET, leverage)  # (after the setup: the fills' solves saw no other change)
    assert not ex._books[TARGET].pos.qty
    return ex


def _edges(scene: str, leverage: int) -> list[tuple[D, D, int]]:
    """(wallet, edge quantity, the code beyond it): where the margin and fee use up the available balance, and
    (with a wallet that covers it) where the notional reaches the bracket's cap."""
    out = []
    for wallet, code in ((D("3000"), -2019), (D("1E+12"), -2027)):
        ex = _exchange(scene, leverage, wallet)
        ref = D(repr(AT))
        with localcontext() as ctx:
            ctx.prec = 28
            if code == -2019:
                edge = ex.available_balance() / (ref / leverage + ref * ex.config.taker_fee)
            else:
                edge = all_brackets()[TARGET].max_notional(leverage) / ref
        out.append((wallet, edge, code))
    return out


def _sizes(edge: D) -> list[D]:
    sizes = [edge]
    up = down = edge
    for _ in range(3):
        up, down = up.next_plus(), down.next_minus()
        sizes += [up, down]
    return sizes + [edge * (1 + D(rel)) for rel in ("1E-14", "1E-12", "1E-10", "-1E-14", "-1E-12", "-1E-10")]


def _answers(fused: bool, scene: str, leverage: int, wallet: D, sizes: list[D]) -> list[Any]:
    """The fused acceptance's answers, or (not ``fused``) ``submit``'s with its margin check all Decimal."""
    out: list[Any] = []
    for qty in sizes:
        ex = _exchange(scene, leverage, wallet)
        if not fused:
            ex.available_covers = lambda needed: False  # type: ignore[method-assign]
        out.append((_entry_answer(ex, fused, qty), qty))
    return out


def _entry_answer(ex: Any, fused: bool, qty: D) -> Any:
    """A MARKET buy of ``qty`` on the target, the fused way or through ``submit``: "accepted" or the error code."""
    try:
        if fused:
            fast_fill.accept_market(ex, ex._fused, TARGET, Side.BUY, qty, False, "c")
        else:
            ex.submit(symbol=TARGET, side=Side.BUY, order_type=OrderType.MARKET, quantity=qty,
                      client_order_id="c", rules_checked=True)  # fmt: skip
    except ExchangeError as exc:
        return exc.code
    return "accepted"


def _judged(scene: str, leverage: int) -> tuple[list[Any], list[Any]]:
    general: list[Any] = []
    fused: list[Any] = []
    for wallet, edge, _code in _edges(scene, leverage):
        sizes = _sizes(edge)
        general += _answers(False, scene, leverage, wallet, sizes)
        fused += _answers(True, scene, leverage, wallet, sizes)
    return general, fused


@pytest.mark.parametrize("leverage", [1, 20])
@pytest.mark.parametrize("scene", list(SCENES))
def test_a_flat_entry_is_judged_as_submit_judges_it(scene: str, leverage: int) -> None:
    general, fused = _judged(scene, leverage)
    assert fused == general
    codes = {a[0] for a in general}
    assert codes == {"accepted", -2019, -2027}, codes  # both sides of both edges


def _in_fill_handler(fused: bool) -> list[Any]:
    """Entries tried by a reader of a fill's ``OrderFilled``, published before the exchange solved after that fill
    (the Cover then still holds the positions before it): sized around the exact balance at that moment."""
    return [_tried_in_fill_handler(fused, i) for i in range(len(_sizes(D(1))))]


def _tried_in_fill_handler(fused: bool, i: int) -> Any:
    out: list[Any] = []

    def emit(event: Any) -> None:
        if type(event).__name__ != "OrderFilled" or event.symbol != "BTCUSDT":
            return
        ref = D(repr(AT))
        edge = ex.available_balance() / (ref + ref * ex.config.taker_fee)  # (leverage 1)
        if not fused:
            ex.available_covers = lambda needed: False
        qty = _sizes(edge)[i]
        out.append((_entry_answer(ex, fused, qty), i))

    ex: Any = SimulatedExchange(all_rules(), all_brackets(), clock=ReplayClock(START), emit=emit,
                                symbols=[*PRICES, "BTCUSDT"], config=ExchangeConfig(initial_balance=D(3000)))
    ex.use_fused_orders()
    PRICES["BTCUSDT"] = 29000.0
    try:
        _bar(ex, 0)
        ex.set_leverage(TARGET, 1)
        ex.set_leverage("BTCUSDT", 1)
        unit_longs(ex)
        _market(ex, "BTCUSDT", Side.BUY, "0.03")  # 870 USDT more of covered longs, filled at the next open:
        _bar(ex, 2)  # the reader of its fill tries the entry
    finally:
        del PRICES["BTCUSDT"]
    assert len(out) == 1
    return out[0]


def test_an_entry_tried_while_a_fill_is_published_is_judged_as_submit_judges_it() -> None:
    general = _in_fill_handler(False)
    assert _in_fill_handler(True) == general
    assert {a[0] for a in general} == {"accepted", -2019}, general


def test_the_float_bounds_decide_most_entries(monkeypatch) -> None:
    """The short way is taken (the Decimal balance is not summed) for entries clearly inside both edges."""
    summed = []
    real = SimulatedExchange.available_balance
    monkeypatch.setattr(SimulatedExchange, "available_balance", lambda self: summed.append(1) or real(self))
    for scene in SCENES:
        ex = _exchange(scene, 1, D(3000))
        before = len(summed)
        fast_fill.accept_market(ex, ex._fused, TARGET, Side.BUY, D("10"), False, "c")  # type: ignore[arg-type]
        assert len(summed) == before, scene


def _planted(module: Any, old: str, new: str) -> dict[str, Any]:
    source = inspect.getsource(module)
    assert source.count(old) == 1, old
    space: dict[str, Any] = {"__name__": module.__name__ + "_planted", "__package__": module.__package__}
    exec(compile(source.replace(old, new), module.__file__, "exec"), space)
    return space


PLANTS: dict[str, tuple[Any, str, str, str]] = {  # name: (module, old, new, the class whose method is taken)
    "the one-book shortcut with several books": (
        fused_state, "if len(ex._books) == 1 and book.pos", "if book.pos", "FusedState"),
    "the one-book shortcut with the book's own orders": (
        fused_state, "_CROSSED and not book.market and not book.resting:", "_CROSSED:", "FusedState"),
    "the one-book shortcut on an isolated book": (
        fused_state, "len(ex._books) == 1 and book.pos.margin_type is _CROSSED and", "len(ex._books) == 1 and",
        "FusedState"),
    "a fill since the cover's solve not seen": (
        margin, "cover.terms is not None and cover.trade == self._next_trade_id and", "cover.terms is not None and",
        "Margin"),
    "the covered longs' short way ignoring orders": (
        margin, "if b.market or b.resting or b.pos.margin_type is _ISOLATED:", "if b.pos.margin_type is _ISOLATED:",
        "Margin"),
    "the covered longs' short way ignoring isolated wallets": (
        margin, "if b.market or b.resting or b.pos.margin_type is _ISOLATED:", "if b.market or b.resting:", "Margin"),
    "the covered longs' notional left out": (margin, "top = cover.notional + cover.err", "top = 0.0", "Margin"),
    "queued orders ignored": (margin, "            if b.market:\n", "            if False:\n", "Margin"),
    "resting orders ignored": (margin, "            if b.resting:\n", "            if False:\n", "Margin"),
    "an isolated wallet ignored": (margin, "                est -= iso\n", "                est -= 0.0\n", "Margin"),
    "an open long's margin ignored": (
        margin, "est += qty * (mark - entry) - notional / lev", "est += qty * (mark - entry)", "Margin"),
    "an open long's cost ignored at leverage 1": (margin, "                        est -= cost\n", "", "Margin"),
    "a short's margin ignored": (margin, "est += qty * (mark - entry) - abs(qty) * mark / pos.leverage",
                                 "est += qty * (mark - entry)", "Margin"),
}  # (the bound's allowances for the quantised terms: tests/unit/test_available_covers.py, on an account made for it)


@pytest.mark.parametrize("plant", list(PLANTS.values()), ids=list(PLANTS))
def test_planted_bugs_are_caught(plant: tuple[Any, str, str, str]) -> None:
    module, old, new, owner = plant
    space = _planted(module, old, new)
    caught = []
    with pytest.MonkeyPatch.context() as mp:
        if owner == "FusedState":
            mp.setattr(fused_state.FusedState, "flat_entry_fits", space["FusedState"].flat_entry_fits)
        else:
            mp.setattr(SimulatedExchange, "covers_float", space["Margin"].covers_float)
        for scene in SCENES:
            for leverage in (1, 20):
                general, fused = _judged(scene, leverage)
                if general != fused:
                    caught.append((scene, leverage))
        if _in_fill_handler(False) != _in_fill_handler(True):
            caught.append(("in a fill's reader", 1))
    assert caught
