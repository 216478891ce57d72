"""Logging set-up: quiet by default, structured (JSON lines) in a file when asked.

Secrets never reach a log record: the formatter masks anything that looks like an API key or secret
registered with :func:`register_secret` (the live engine registers its keys at start-up).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it would appear in a log line."""
    if value and len(value) >= 8:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, sort_keys=True))


def setup_logging(verbosity: int = 0, log_file: str | None = None) -> None:
    """Warnings only on stderr by default; ``-v`` info, ``-vv`` debug; JSON lines to ``log_file``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_Redacting("%(levelname)s %(name)s: %(message)s"))
    console.setLevel(level)
    root.addHandler(console)
    root.setLevel(min(level, logging.INFO) if log_file else level)
    if log_file:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        file_handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
        root.addHandler(file_handler)
