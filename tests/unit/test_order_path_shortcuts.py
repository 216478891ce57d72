"""Shortcuts on the backtest's order path (issue 17, target 2) give exactly what the steps they skip give.

Each test runs the shortcut and the general computation on many inputs, chosen to sit on both sides of every
condition the shortcut tests, and compares the results digit for digit; a planted-bug test shows the comparison
can fail.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from typing import Any

import pytest

from kinetic_empire.risk import ids


def _general_client_id(intent_id: str, suffix: str, part: int = 0) -> str:
    """``ids.client_id`` as it was: the pattern decides, then the clean-up."""
    tail = f"-{suffix}{part + 1 if part else ''}"
    cid = f"{intent_id}{tail}"
    if ids.CLIENT_ID_RE.match(cid):
        return cid
    digest = hashlib.blake2b(intent_id.encode(), digest_size=5).hexdigest()
    room = 36 - len(tail) - len(digest) - 1
    return f"{ids._BAD.sub('_', intent_id)[:room]}.{digest}{tail}"


def _intent_ids() -> list[str]:
    rng = random.Random(17)
    alphabet = string.ascii_letters + string.digits + ".:/_-" + " \n\t+#é€=,"
    made = ["b0FILUSDT-1", "s-" + "9" * 33, "s-" + "9" * 34, "", "x\n", "a" * 36, "a" * 40, "ü-1", "a b"]
    for _ in range(3000):
        n = rng.choice((rng.randint(1, 12), rng.randint(25, 40)))
        pool = alphabet if rng.random() < 0.3 else alphabet[:-10]
        made.append("".join(rng.choice(pool) for _ in range(n)))
    return made


def test_client_ids_are_the_ones_the_pattern_gives() -> None:
    kept = cleaned = 0
    for intent_id in _intent_ids():
        for suffix, part in ((ids.ENTRY, 0), (ids.CLOSE, 0), (ids.STOP, 2), (ids.REDUCE, 11)):
            general = _general_client_id(intent_id, suffix, part)
            assert ids.client_id(intent_id, suffix, part) == general, (intent_id, suffix, part)
            kept += general.startswith(intent_id)
            cleaned += not general.startswith(intent_id)
    assert kept > 1000 and cleaned > 1000, (kept, cleaned)  # both branches taken


def test_a_planted_bug_in_the_client_id_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A character the pattern refuses let through by the shortcut: ids with it would be sent as they are."""
    monkeypatch.setattr(ids, "VALID", re.compile(r"[.A-Z:/a-z0-9_ -]{1,36}").fullmatch)
    with pytest.raises(AssertionError):
        test_client_ids_are_the_ones_the_pattern_gives()


def test_the_fused_fill_floats_are_float() -> None:
    """``FusedState.float`` (zeros of every exponent and sign without their string, as the fill inlines it) is
    ``float(d)`` to the bit, sign of zero included."""
    import math
    from decimal import Decimal

    from kinetic_empire.exchange.fast_fill import FusedState

    memo = FusedState(Decimal(0))
    values = [Decimal(x) for x in ("0", "-0", "0.0", "-0.000", "0E+3", "-0E-30", "100.0", "-3967.9", "5.123",
                                   "1E-400", "-1E+400", "5.1234567890123456789012345678", "0.30000000000000004")]
    for d in values:
        got, want = memo.float(d), float(d)
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want) and type(got) is float, d


def _record_as_it_was(t: Any, exit_time: int, exit_reason: str, exit_tag: str = "") -> Any:
    """``OpenTrade.record`` as it was: the frozen dataclass's own constructor."""
    from decimal import Decimal

    from kinetic_empire.core.enums import PositionSide
    from kinetic_empire.portfolio.records import TradeRecord, tidy

    zero = Decimal(0)
    entry = t.open_notional / t.opened_qty if t.opened_qty else zero
    exit_price = t.close_notional / t.closed_qty if t.closed_qty else zero
    net = t.gross - t.fees + t.funding
    ret = net / t.open_notional * 100 if t.open_notional else zero
    return TradeRecord(trade_id=t.trade_id, strategy_id=t.strategy_id, symbol=t.symbol,
                       side=PositionSide.LONG if t.long else PositionSide.SHORT, quantity=t.max_abs,
                       entry_time=t.entry_time, entry_price=tidy(entry), exit_time=exit_time,
                       exit_price=tidy(exit_price), gross_pnl=t.gross, fees=t.fees, funding=t.funding, net_pnl=net,
                       return_pct=tidy(ret), exit_reason=exit_reason, duration_ms=exit_time - t.entry_time,
                       entry_tag=t.entry_tag, exit_tag=exit_tag)  # fmt: skip


def test_trade_records_are_the_ones_the_constructor_makes() -> None:
    """``OpenTrade.record`` fills a TradeRecord field by field: equal, field for field and type for type, to the
    constructor's, and as frozen."""
    import dataclasses
    from decimal import Decimal

    from kinetic_empire.portfolio.records import TradeRecord
    from kinetic_empire.portfolio.trades import OpenTrade

    rng = random.Random(5)
    for i in range(200):
        long = rng.random() < 0.5
        t = OpenTrade(i, "FILUSDT", f"s{i % 3}", 1000 + i, long, rng.choice(["", "tag"]))
        for _ in range(rng.randint(1, 3)):
            t.grow(Decimal(rng.randint(1, 500)).scaleb(-rng.randint(0, 3)) * (1 if long else -1),
                   Decimal(repr(round(rng.uniform(0.1, 50_000), 3))), Decimal(rng.randint(0, 99)).scaleb(-4))
        t.funding = Decimal(rng.randint(-50, 50)).scaleb(-5)
        if rng.random() < 0.8:
            t.shrink(abs(t.qty), Decimal(repr(round(rng.uniform(0.1, 50_000), 3))),
                     Decimal(rng.randint(-9999, 9999)).scaleb(-4), Decimal(rng.randint(0, 99)).scaleb(-4))
        made, want = t.record(9_000 + i, "signal", exit_tag="x"), _record_as_it_was(t, 9_000 + i, "signal", "x")
        assert type(made) is TradeRecord and made == want and repr(made) == repr(want)
        for f in dataclasses.fields(TradeRecord):
            assert type(getattr(made, f.name)) is type(getattr(want, f.name)), f.name
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.fees = Decimal(0)  # type: ignore[misc]


def _tidy_as_it_was(value: Any) -> Any:
    from decimal import Decimal

    if not value:
        return Decimal(0)
    out = value.quantize(Decimal("1e-10")).normalize()
    exponent = out.as_tuple().exponent
    return out.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else out


def test_tidy_gives_the_digits_it_gave() -> None:
    """``records.tidy`` decides "a whole number" without ``as_tuple``: the same digits and exponent for averages,
    ratios, whole numbers with trailing zeros, negatives, tiny and huge values and NaN."""
    from decimal import Decimal

    from kinetic_empire.portfolio.records import tidy

    rng = random.Random(11)
    values = [Decimal(x) for x in ("4E+4", "40000", "-4E+4", "1", "10", "0.5", "-0.0000000001", "1E-11", "123.4500",
                                   "1E+17", "99999999999999999.99999999999", "NaN", "-0", "0E+5", "7.000")]
    values += [Decimal(rng.randint(-10**12, 10**12)).scaleb(rng.randint(-20, 8)) for _ in range(3000)]
    values += [Decimal(rng.randint(1, 10**6)) / Decimal(rng.randint(1, 999)) for _ in range(1000)]
    def outcome(f: Any, v: Any) -> str:
        try:
            return repr(f(v))
        except ArithmeticError as exc:  # (more than 28 digits at 10 places: both refuse it)
            return type(exc).__name__

    for v in values:
        assert outcome(tidy, v) == outcome(_tidy_as_it_was, v), v
    assert sum(outcome(tidy, v).startswith("Decimal") for v in values) > 3000


def test_income_rows_of_fused_fills_are_written_before_anything_else_touches_the_history() -> None:
    """The fused fill leaves its income rows due (``Rows._due``, its trade row); every way of touching the income
    history writes them first, in order, as ``Ledger._record_trade`` would have: then a row added after them comes
    after them, numbered after them."""
    from decimal import Decimal

    from kinetic_empire.exchange.ledger import _INCOME_KEYS, Rows

    def fill(trade_id: int, fee: str, pnl: str) -> tuple[Any, ...]:
        return (trade_id, 7, "FILUSDT", "SELL", Decimal("5.1"), Decimal(100), Decimal(510), Decimal(fee), Decimal(pnl),
                False, False, 1000 + trade_id)  # fmt: skip

    def written(rows: Rows) -> list[tuple[Any, ...]]:
        return [(r["incomeType"], r["income"], r["tranId"], r["tradeId"]) for r in rows]

    want = [("COMMISSION", Decimal("-0.204"), 1, "1"), ("REALIZED_PNL", Decimal("3.5"), 2, "2"),
            ("COMMISSION", Decimal("-0.204"), 3, "2"), ("FUNDING_FEE", Decimal("-1"), 4, "")]
    touches = {
        "add": lambda r: r.add("FILUSDT", "FUNDING_FEE", Decimal(-1), "USDT", 5, "", 4, ""),
        "append": lambda r: r.append(dict(zip(_INCOME_KEYS, ("FILUSDT", "FUNDING_FEE", Decimal(-1), "USDT", 5, "", 4,
                                                            ""), strict=True))),
        "len": len, "iter": lambda r: next(iter(r)), "index": lambda r: r[0], "slice": lambda r: r[:],
        "equal": lambda r: r == [],
        "assign": lambda r: r.__setitem__(slice(9, 9), []),
    }
    for name, touch in touches.items():
        rows = Rows(_INCOME_KEYS)
        rows._due.extend([fill(1, "0.204", "0"), fill(2, "0.204", "3.5")])
        touch(rows)
        assert not rows._due, name
        assert written(rows)[:3] == want[:3], name
        if name in ("add", "append"):
            assert written(rows) == want, name


def test_the_shared_price_table_gives_each_number_its_own_digits() -> None:
    """The gate's fast path shares its reference prices' Decimals with the fused fill (keyed by value): a float gets
    what the fill's conversion keeps for it, an int its own digits (``5``, not the equal float's ``5.0``), and a value
    without a finite Decimal None, never kept."""
    from decimal import Decimal

    from kinetic_empire.exchange.fast_fill import FusedState
    from kinetic_empire.risk.fast_path import FastIntents

    memo = FusedState(Decimal(0))
    fast = FastIntents.__new__(FastIntents)
    fast.share_prices(memo.prices)
    assert str(memo.dec(5.0)) == "5.0" and str(fast._price(5)) == "5"
    assert str(fast._price(5.0)) == "5.0" and str(fast._price(0.1)) == "0.1" and str(memo.dec(0.1)) == "0.1"
    assert fast._price(float("inf")) is None and str(memo.dec(float("inf"))) == "Infinity"
    assert fast._price(float("inf")) is None and float("inf") not in memo.prices
