"""A strategy's error names the line of the strategy's own code, in backtests and in live halts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kinetic_empire.core.errors import StrategyError


def raised_in(path: Path, source: str) -> BaseException:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.on_kline()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def test_the_frame_shown_is_the_strategys_not_the_library_it_called(tmp_path: Path) -> None:
    cause = raised_in(tmp_path / "boom.py", "import json\n\ndef on_kline():\n    return json.loads('{')\n")
    error = StrategyError("boom", "KlineClosed(...)", cause)
    assert error.where == f"at {tmp_path / 'boom.py'}:4 in on_kline: return json.loads('{{')"
    assert "JSONDecodeError" in str(error)


def test_without_a_traceback_it_says_so() -> None:
    assert StrategyError("s", None, ValueError("x")).where == "(no traceback)"
