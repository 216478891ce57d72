"""The signing fast path writes exactly the bytes ``urlencode`` + HMAC-SHA256 wrote before it (the venue checks the
signature over the bytes it receives, so one differing character is a rejected order)."""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from kinetic_empire.binance.signing import Signer, encode, sign, signed_query, wire_value
from kinetic_empire.core.enums import OrderType, Side

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ALPHABET = "abcXYZ019_.-~ +&=/?%é€\"'#"


def reference(params: dict[str, Any], timestamp: int, recv_window: int) -> str:
    """The signing as it was: urlencode of the merged parameters, then the signature over that text."""
    merged = {**params, "recvWindow": recv_window, "timestamp": timestamp}
    text = urlencode([(k, wire_value(v)) for k, v in merged.items() if v is not None])
    return f"{text}&signature={hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()}"


def random_params(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(rng.randrange(0, 8)):
        key = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 6)))
        out[key] = rng.choice([
            "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12))),
            Decimal(rng.randrange(-10**6, 10**6)).scaleb(rng.randrange(-9, 3)),
            rng.random() < 0.5, None, rng.randrange(-5, 10**13), Side.BUY, OrderType.STOP_MARKET,
        ])
    if rng.random() < 0.1:
        out["timestamp"] = 1
    return out


def test_the_fast_path_writes_what_urlencode_and_hmac_wrote() -> None:
    rng = random.Random(17)
    signer = Signer(SECRET)
    for _ in range(3000):
        params = random_params(rng)
        ts, rw = rng.randrange(10**12, 2 * 10**12), rng.choice([5000, 10000])
        want = reference(params, ts, rw)
        assert signer.query(params, ts, rw) == want, params
        assert signed_query(params, SECRET, ts, rw) == want
        assert encode(params) == urlencode([(k, wire_value(v)) for k, v in params.items() if v is not None])


def test_an_order_query_is_signed_as_binance_documents() -> None:
    # Binance's documented example (key and secret of its API docs): the signature of this exact text
    text = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
            "&timestamp=1499827319559")
    assert sign(SECRET, text) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    params = {"symbol": "LTCBTC", "side": Side.BUY, "type": OrderType.LIMIT, "timeInForce": "GTC",
              "quantity": Decimal("1"), "price": Decimal("0.1")}
    assert Signer(SECRET).query(params, 1499827319559, 5000) == f"{text}&signature={sign(SECRET, text)}"


def test_a_python_without_openssl_hmac_objects_signs_the_same(monkeypatch: Any) -> None:
    # the signer copies OpenSSL's HMAC object where hmac keeps one, and the hmac wrapper itself where it does not
    import kinetic_empire.binance.signing as signing

    def pure_python(key: bytes, msg: bytes | None = None, digestmod: Any = None) -> hmac.HMAC:
        mac = hmac.HMAC(key, msg, digestmod=lambda: hashlib.sha256())  # a callable: hmac's Python HMAC, no _hmac
        assert getattr(mac, "_hmac", None) is None
        return mac

    monkeypatch.setattr(signing.hmac, "new", pure_python)
    signer = Signer(SECRET)
    rng = random.Random(5)
    for _ in range(200):  # repeated: each signature starts from the keyed state, never from the last one
        params = random_params(rng)
        assert signer.query(params, 1499827319559, 5000) == reference(params, 1499827319559, 5000)


def test_the_keyed_state_is_copied_for_every_signature() -> None:
    signer = Signer(SECRET)
    params = {"symbol": "FILUSDT", "side": "BUY"}
    assert signer.query(params, 1, 5000) == signer.query(params, 1, 5000) == reference(params, 1, 5000)
