"""The exception tree. Every message says what went wrong and where."""

from __future__ import annotations

from typing import Any


class KineticError(Exception):
    """Base of every error Kinetic Empire raises on purpose."""


class ConfigError(KineticError):
    """A configuration value is missing, unknown or invalid; `path` is the dotted key path."""

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}")


class DataError(KineticError):
    """A kline file breaks a validation rule; names the file, the row and the rule."""

    def __init__(self, file: str, rule: str, message: str, row: int | None = None) -> None:
        self.file = file
        self.rule = rule
        self.row = row
        where = f"{file}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: [{rule}] {message}")


class PluginError(KineticError):
    """A strategy plugin cannot be found, loaded, or is declared twice."""


class StrategyError(KineticError):
    """User strategy code raised; carries the event that triggered it."""

    def __init__(self, strategy: str, event: Any, cause: BaseException) -> None:
        self.strategy = strategy
        self.event = event
        self.cause = cause
        super().__init__(f"strategy {strategy!r} raised {type(cause).__name__}: {cause} (while handling {event!r})")

    @property
    def where(self) -> str:
        """``at strategies/boom.py:5 in on_kline: raise ValueError('bad idea')``: the innermost frame of the
        strategy's own code (not the engine's, not a library's), else the innermost frame of all."""
        import sysconfig
        import traceback
        from pathlib import Path

        frames = traceback.extract_tb(self.cause.__traceback__)
        if not frames:
            return "(no traceback)"
        paths = sysconfig.get_paths()
        outside = (str(Path(__file__).resolve().parents[1]),
                   *{str(Path(paths[k]).resolve()) for k in ("stdlib", "platstdlib", "purelib", "platlib")})
        own = [f for f in frames if not str(Path(f.filename).resolve()).startswith(outside)]
        frame = (own or frames)[-1]
        try:
            shown = str(Path(frame.filename).resolve().relative_to(Path.cwd()))
        except ValueError:
            shown = frame.filename
        code = f": {frame.line.strip()}" if frame.line else ""
        return f"at {shown}:{frame.lineno} in {frame.name}{code}"


class HandlerError(KineticError):
    """A bus handler raised; carries the handler and the event that triggered it."""

    def __init__(self, handler: str, event: Any, cause: BaseException) -> None:
        self.handler = handler
        self.event = event
        self.cause = cause
        super().__init__(f"handler {handler} raised {type(cause).__name__}: {cause} (event: {event!r})")


class ExchangeError(KineticError):
    """An order or request refused by an exchange (simulated or real), with Binance's code and message."""

    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        self.code = code
        self.msg = message
        self.http_status = http_status
        super().__init__(f"{code}: {message}")
