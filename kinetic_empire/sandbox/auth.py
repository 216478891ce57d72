"""API keys and request signing, checked byte for byte as Binance does (reference section 2).

The signed text is the raw query string (without ``signature``) followed directly by the raw body
(without ``signature``); nothing is parsed or re-encoded before hashing, so a client that signs one
encoding and sends another fails here exactly as it would on Binance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ApiError, invalid, mandatory

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{1,128}$")
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A sandbox-only key pair; each key is its own account."""

    api_key: str
    api_secret: str
    _mac: Any = field(default=None, init=False, repr=False, compare=False)
    """The secret's keyed HMAC-SHA256 state, made once: each request copies it (no key schedule, no digest
    look-up by name in OpenSSL per request)."""

    def __post_init__(self) -> None:
        mac = hmac.new(self.api_secret.encode(), digestmod=hashlib.sha256)
        # OpenSSL's own HMAC object where hmac wraps one (copy, update, hexdigest: the same calls, in C)
        object.__setattr__(self, "_mac", getattr(mac, "_hmac", None) or mac)

    def sign(self, text: str) -> str:
        """:func:`sign` with this key's secret."""
        mac = self._mac.copy()
        mac.update(text.encode("utf-8", "surrogateescape"))
        return str(mac.hexdigest())

    @classmethod
    def generate(cls) -> ApiKey:
        return cls(
            "".join(secrets.choice(_ALNUM) for _ in range(64)), "".join(secrets.choice(_ALNUM) for _ in range(64))
        )


def load_keys(path: Path, create: bool = True) -> list[ApiKey]:
    """Keys from a JSON file: ``{"api_key":..,"api_secret":..}`` or a list of them.

    A missing file is created with one generated key (mode 0600) so restarts keep the same key.
    """
    if not path.exists():
        if not create:
            raise FileNotFoundError(path)
        key = ApiKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"api_key": key.api_key, "api_secret": key.api_secret}, fh, indent=2)
        return [key]
    raw = json.loads(path.read_text())
    items = raw if isinstance(raw, list) else [raw]
    keys = []
    for i, item in enumerate(items):
        try:
            keys.append(ApiKey(str(item["api_key"]), str(item["api_secret"])))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: entry {i} needs 'api_key' and 'api_secret'") from exc
    if not keys:
        raise ValueError(f"{path}: no keys")
    return keys


def sign(secret: str, text: str) -> str:
    """HMAC-SHA256 hex digest; ``hmac.digest`` is OpenSSL's one-shot path (no Python HMAC object per request)."""
    return hmac.digest(secret.encode(), text.encode("utf-8", "surrogateescape"), "sha256").hex()


def _strip_signature(part: str) -> tuple[str, str | None]:
    """The part without its ``signature=`` pair, and the signature found there."""
    if "signature=" not in part:
        return part, None
    last = part.rfind("&signature=")
    if last >= 0 and part.count("signature=") == 1 and "&" not in part[last + 1 :]:
        return part[:last], part[last + 11 :]  # the usual shape: one signature, sent last
    kept = []
    found = None
    for piece in part.split("&"):
        if piece.startswith("signature="):
            found = piece[10:]
        else:
            kept.append(piece)
    return "&".join(kept), found


def check_api_key(header: str | None, keys: dict[str, ApiKey]) -> ApiKey:
    if not header:
        raise ApiError(-2014, "API-key format invalid.")
    key = keys.get(header)
    if key is None:
        if not _KEY_FORMAT.match(header):
            raise ApiError(-2014, "API-key format invalid.")
        raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.")
    return key


def verify_signature(secret: str | ApiKey, raw_query: str, raw_body: str) -> None:
    """Raise -1102 (no signature) or -1022 (mismatch); ``secret`` is the secret or the key that holds it."""
    query, sig_q = _strip_signature(raw_query)
    body, sig_b = _strip_signature(raw_body) if raw_body else ("", None)
    signature = sig_q if sig_q is not None else sig_b
    if not signature:
        raise mandatory("signature")
    expected = secret.sign(query + body) if isinstance(secret, ApiKey) else sign(secret, query + body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(-1022, "Signature for this request is not valid.")


def check_timestamp(timestamp: str | None, recv_window: str | None, server_ms: int, max_window: int) -> None:
    """Binance's acceptance rule: ``timestamp < server + 1000`` and ``server - timestamp <= recvWindow``."""
    if not timestamp:
        raise mandatory("timestamp")
    if not timestamp.isdigit():
        raise ApiError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.")
    window = 5000
    if recv_window:
        if not recv_window.isdigit():
            raise ApiError(
                -1100, "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,20}$'."
            )
        window = int(recv_window)
        if window <= 0 or window > max_window:
            raise invalid("recvWindow")
    ts = int(timestamp)
    if ts >= server_ms + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - ts > window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
