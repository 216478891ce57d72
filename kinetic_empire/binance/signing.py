"""API keys and request signing (reference section 2).

Keys come from the environment (``KINETIC_BINANCE_API_KEY`` / ``KINETIC_BINANCE_API_SECRET``) or a
``.env`` file, never from YAML, and are registered with the log redactor as soon as they are read.
The signature is HMAC-SHA256 over the exact bytes sent: the query string is built once, signed, and
sent unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from ..logs import register_secret

ENV_KEY = "KINETIC_BINANCE_API_KEY"
ENV_SECRET = "KINETIC_BINANCE_API_SECRET"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An HMAC key pair; ``repr`` and ``str`` never show either part."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    source: str = "given"

    def __post_init__(self) -> None:
        register_secret(self.api_key)
        register_secret(self.api_secret)

    @property
    def fingerprint(self) -> str:
        """A short, one-way id of the key for journals and reports (the key itself is never stored)."""
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return f"Credentials(key {self.fingerprint}, from {self.source})"


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``export`` prefixes, quotes, blank lines and ``#`` comments allowed."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


def load_credentials(
    env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Credentials | None:
    """Keys from the environment first, then ``dotenv``; None when neither has both parts."""
    env = os.environ if env is None else env
    key, secret = env.get(ENV_KEY, "").strip(), env.get(ENV_SECRET, "").strip()
    if key and secret:
        return Credentials(key, secret, "environment")
    if dotenv is not None and dotenv.is_file():
        values = parse_dotenv(dotenv.read_text(encoding="utf-8"))
        key, secret = key or values.get(ENV_KEY, ""), secret or values.get(ENV_SECRET, "")
        if key and secret:
            return Credentials(key, secret, str(dotenv))
    return None


def wire_value(value: Any) -> str:
    """How a parameter is written on the wire: plain decimals (no exponent), lower-case booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


_SAFE_CHARS = string.ascii_letters + string.digits + "_.~-"  # what quote_plus leaves as it is


def _safe(text: str) -> bool:
    """Every character one ``quote_plus`` leaves as it is (``str.strip`` leaves nothing): the regular expression
    it replaces was the only use of the ``re`` engine on an order's way out, run cold after a wait."""
    return not text.strip(_SAFE_CHARS)


_KEYS: dict[str, str] = {}  # parameter name -> its quoted form (Binance's names, quoted once)


def _quoted(text: str) -> str:
    return text if _safe(text) else quote_plus(text)


def encode(params: Mapping[str, Any]) -> str:
    """``k=v&...`` in the given order, skipping None, URL-encoded as Binance and ccxt do.

    The same text as ``urlencode`` (quote_plus on every name and value), without its per-character work for
    what is already safe: symbols, sides, decimals and client ids are."""
    out = []
    for k, v in params.items():
        if v is None:
            continue
        key = _KEYS.get(k)
        if key is None:
            key = _quoted(str(k))
            if len(_KEYS) < 256:  # a caller inventing names does not grow it
                _KEYS[k] = key
        text = v if type(v) is str else wire_value(v)  # most values are plain strings already (not subclasses)
        out.append(f"{key}={text if _safe(text) else quote_plus(text)}")
    return "&".join(out)


def sign(secret: str, text: str) -> str:
    return hmac.digest(secret.encode(), text.encode(), "sha256").hex()


class Signer:
    """Signs with one secret: the keyed HMAC state is made once and copied per request (no key schedule, no
    digest look-up by name on the order path). The copy is OpenSSL's own HMAC object where ``hmac`` keeps one
    (CPython's ``HMAC._hmac``), not the Python wrapper around it: the wrapper's ``copy``, ``update`` and
    ``hexdigest`` are three more Python frames that an order path after an idle wait runs cold (measured: 50 µs
    against 72 µs for the first signature after 5 ms idle, 3.2 against 3.9 µs hot)."""

    __slots__ = ("_mac",)

    def __init__(self, secret: str) -> None:
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._mac: Any = getattr(mac, "_hmac", None) or mac  # the same copy/update/hexdigest, the same digest

    def query(self, params: Mapping[str, Any], timestamp: int, recv_window: int) -> str:
        """The query string with ``recvWindow``, ``timestamp`` and, last, ``signature``."""
        if "recvWindow" in params or "timestamp" in params:  # ours replace the caller's, in their places
            text = encode({**params, "recvWindow": recv_window, "timestamp": timestamp})
        else:
            text = encode(params)
            text = (f"{text}&" if text else "") + f"recvWindow={recv_window}&timestamp={timestamp}"
        mac = self._mac.copy()
        mac.update(text.encode())
        return f"{text}&signature={mac.hexdigest()}"


def signed_query(params: Mapping[str, Any], secret: str, timestamp: int, recv_window: int) -> str:
    """The query string with ``recvWindow``, ``timestamp`` and, last, ``signature``."""
    return Signer(secret).query(params, timestamp, recv_window)
