"""One rule for every user-given name that becomes a file or folder name (run ids, strategy names).

A name is 1-100 characters of letters, digits, ``.``, ``_``, ``-`` and ``+`` (default run ids join
strategy names with ``+``) and does not start with ``.``. So it never climbs out of its folder
(``..``, ``../x``), never nests (``a/b``), never hides (``.x``), and means the same on every file system.
"""

from __future__ import annotations

import re

from .errors import ConfigError

MAX_NAME_LENGTH = 100
_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._+-]")
RULE = (f"use 1-{MAX_NAME_LENGTH} letters, digits, '.', '_', '-' or '+', not starting with '.'")


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME_LENGTH and _SAFE.fullmatch(value) is not None


def safe_name(value: object, what: str, where: str) -> str:
    """``value`` unchanged if it is safe as a file name; else a ConfigError naming ``what`` and ``where``."""
    if is_safe_name(value):
        assert isinstance(value, str)
        return value
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else f"{value[:37]!r}... ({len(value)} chars)"
    raise ConfigError(where, f"{what} {shown} cannot be used as a file name: {RULE}")


def to_safe_name(value: str) -> str:
    """A safe name derived from ``value`` (each other character becomes ``_``), for generated ids."""
    out = _UNSAFE_CHAR.sub("_", value).lstrip(".")[:MAX_NAME_LENGTH]
    return out or "_"
