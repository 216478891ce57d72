"""Shortcuts on the backtest's order path (issue 17, target 2) give exactly what the steps they skip give.

Each test runs the shortcut and the general computation on many inputs, chosen to sit on both sides of every
condition the shortcut tests, and compares the results digit for digit; a planted-bug test shows the comparison
can fail.
"""

from __future__ import annotations

import hashlib
import random
import string

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
    monkeypatch.setattr(ids, "_ALLOWED_SET", frozenset(ids._ALLOWED + " "))
    with pytest.raises(AssertionError):
        test_client_ids_are_the_ones_the_pattern_gives()


def test_the_fused_fill_floats_are_float() -> None:
    """``FusedState.float`` (zeros of every exponent and sign without their string, the rest remembered) is
    ``float(d)`` to the bit, sign of zero included."""
    import math
    from decimal import Decimal

    from kinetic_empire.exchange.fast_fill import FusedState

    memo = FusedState(Decimal(0))
    values = [Decimal(x) for x in ("0", "-0", "0.0", "-0.000", "0E+3", "-0E-30", "100.0", "-3967.9", "5.123",
                                   "1E-400", "-1E+400", "5.1234567890123456789012345678", "0.30000000000000004")]
    for d in values * 2:  # the second time from the memo
        got, want = memo.float(d), float(d)
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want) and type(got) is float, d
