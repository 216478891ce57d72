"""The sandbox's fast paths for reading a request (issue 17 target 7) give exactly what the general code
gives: parameters as ``parse_qsl(keep_blank_values=True)`` reads them (duplicates refused with -1101), and
the signature cut out of the signed text as the piece-by-piece scan does, on any input."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from kinetic_empire.sandbox.auth import _strip_signature
from kinetic_empire.sandbox.errors import ApiError
from kinetic_empire.sandbox.params import parse_pairs


def reference_pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for k, v in parse_qsl(text, keep_blank_values=True):
        if k in pairs:
            raise ApiError(-1101, "Duplicate values for a parameter detected.")
        pairs[k] = v
    return pairs


def reference_strip(part: str) -> tuple[str, str | None]:
    if "signature=" not in part:
        return part, None
    kept, found = [], None
    for piece in part.split("&"):
        if piece.startswith("signature="):
            found = piece[10:]
        else:
            kept.append(piece)
    return "&".join(kept), found


def outcome(f, text: str) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "ok", f(text)
    except ApiError as err:
        return "error", err.code


SIGNED = "symbol=FILUSDT&side=BUY&type=LIMIT&quantity=10&price=4.000&timestamp=1690848000000&signature=ab12"
EXAMPLES = [
    "", "a", "a=", "=a", "a=1&", "&a=1", "a=1&&b=2", "a=1&a=2", "a=1&b=2&a=", "a==b", "a=b=c", "x=%41&y=+",
    "x=%zz", "x=1;y=2", "x=\udcff", "signature=ab&x=1", "x=1&signature=ab&signature=cd", "x=1&signature=",
    "x=1&signature=ab&y=2", "signature=", "xsignature=1", "x=1&xsignature=2", SIGNED, SIGNED + "&x=1",
]  # fmt: skip


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_read_as_the_reference_reads_them(text: str) -> None:
    assert outcome(lambda t: parse_pairs(t, ""), text) == outcome(reference_pairs, text)
    assert outcome(lambda t: parse_pairs("", t), text) == outcome(reference_pairs, text)
    assert _strip_signature(text) == reference_strip(text)


def test_random_texts_read_as_the_reference_reads_them() -> None:
    rng = random.Random(17)
    alphabet = "ab=&%+;1 signature\udcff"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        if rng.random() < 0.3:
            text = "symbol=X&" + text + "&signature=" + "".join(rng.choice("ab=&") for _ in range(3))
        assert outcome(reference_pairs, text) == outcome(lambda t: parse_pairs(t, ""), text), text
        assert reference_strip(text) == _strip_signature(text), text


def test_the_query_wins_over_the_body() -> None:
    assert parse_pairs("a=1&b=2", "a=9&c=3") == {"a": "1", "b": "2", "c": "3"}
