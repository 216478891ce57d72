"""The plugin surface: parameters, indicators revealed only up to the current kline, the registry."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire import Param, Strategy, crossover, crossunder
from kinetic_empire.core.errors import ConfigError, PluginError
from kinetic_empire.indicators import atr, ema
from kinetic_empire.strategy.registry import StrategyRegistry, build_registry, load_reference
from kinetic_empire.strategy.series import Cursor, Series


class Demo(Strategy):
    """A demo."""

    timeframe = "1m"
    period = Param(3, "period", min=2, max=50)
    level = Param(0.5, "a float")
    flag = Param(False, "a bool")
    mode = Param("a", "a choice", choices=("a", "b"))

    def init(self):
        self.avg = self.I(ema, self.close, self.period)


def test_params_defaults_overrides_and_errors():
    s = Demo("FILUSDT", {"period": "5", "level": 1, "flag": "yes"})
    assert (s.period, s.level, s.flag, s.mode) == (5, 1.0, True, "a")
    with pytest.raises(ConfigError, match=r"params\.perod: unknown parameter"):
        Demo("FILUSDT", {"perod": 5})
    with pytest.raises(ConfigError, match="expected int"):
        Demo("FILUSDT", {"period": 2.5})
    with pytest.raises(ConfigError, match="below the minimum"):
        Demo("FILUSDT", {"period": 1})
    with pytest.raises(ConfigError, match="not one of"):
        Demo("FILUSDT", {"mode": "c"})
    with pytest.raises(AttributeError):
        s.period = 4  # type: ignore[misc]


def test_series_reveals_only_up_to_the_cursor():
    cursor = Cursor()
    s = Series(np.arange(10.0), cursor, "x")
    cursor.i = 3
    assert s[-1] == 3.0 and s[-2] == 2.0 and s[0] == 0.0 and len(s) == 4
    assert list(s.values) == [0.0, 1.0, 2.0, 3.0] and list(s[-2:]) == [2.0, 3.0]
    with pytest.raises(IndexError, match="future"):
        _ = s[4]
    with pytest.raises(IndexError):
        _ = s[-5]
    with pytest.raises(ValueError):
        s.values[0] = 5.0  # read-only view


def test_crossover_helpers():
    cursor = Cursor()
    a = Series(np.array([1.0, 2.0, 3.0]), cursor, "a")
    b = Series(np.array([2.0, 2.0, 2.0]), cursor, "b")
    cursor.i = 1
    assert not crossover(a, b)  # 2 > 2 is false
    cursor.i = 2
    assert crossover(a, b) and not crossunder(a, b)
    assert crossover(a, 2.5) and crossunder(2.5, a)


def test_indicators_are_declared_once_and_named():
    s = Demo("FILUSDT")
    closes = np.linspace(1, 2, 20)
    s._bind(closes, closes, closes, closes, closes)
    assert [spec.name for spec in s._specs] == ["ema(close, 3)"]
    assert s._inferred_warmup() == 3


def test_talib_atr_agrees_with_ta_after_warmup():
    import pandas as pd
    from ta.volatility import AverageTrueRange

    from kinetic_empire.data import load_klines, sample_data_dir

    k = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m", end="2023-08-03")
    ours = atr(k.high, k.low, k.close, 14)
    theirs = AverageTrueRange(pd.Series(k.high), pd.Series(k.low), pd.Series(k.close), 14).average_true_range()
    # the two libraries seed Wilder's average one kline apart; the difference decays away
    assert np.allclose(ours[500:], theirs.to_numpy()[500:], rtol=1e-9)


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def test_registry_from_folder_and_duplicates(tmp_path):
    body = """
        from kinetic_empire import Strategy
        class MyIdea(Strategy):
            '''Does nothing.'''
    """
    _write(tmp_path, "one.py", body)
    reg = StrategyRegistry()
    reg.load_folder(tmp_path)
    assert "my_idea" in reg
    other = tmp_path / "other"
    other.mkdir()
    _write(other, "two.py", body)
    with pytest.raises(PluginError, match=r"my_idea.*declared twice.*one\.py.*two\.py"):
        reg.load_folder(other)


def test_registry_refuses_other_api_versions(tmp_path):
    _write(tmp_path, "old.py", """
        from kinetic_empire import Strategy
        class Old(Strategy):
            api_version = 0
    """)  # fmt: skip
    with pytest.raises(PluginError, match="version 0"):
        StrategyRegistry().load_folder(tmp_path)


def test_broken_plugin_file_names_itself(tmp_path):
    _write(tmp_path, "broken.py", "import nonexistent_module_xyz\n")
    with pytest.raises(PluginError, match=r"broken\.py: failed to import"):
        StrategyRegistry().load_folder(tmp_path)


def test_explicit_reference_and_unknown(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg_refs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(pkg, "strats.py", """
        from kinetic_empire import Strategy
        class Ref(Strategy):
            pass
    """)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = load_reference("mypkg_refs.strats:Ref")
    assert cls.strategy_name() == "ref"
    reg = StrategyRegistry()
    assert reg.get("mypkg_refs.strats:Ref") is cls
    with pytest.raises(PluginError, match="unknown strategy 'nope'"):
        reg.get("nope")
    with pytest.raises(PluginError, match="has no attribute"):
        load_reference("mypkg_refs.strats:Missing")


def test_entry_point_plugins(tmp_path, monkeypatch):
    """A real installed distribution (dist-info on sys.path) exposing the entry point group."""
    (tmp_path / "ep_plugin_pkg.py").write_text(textwrap.dedent("""
        from kinetic_empire import Strategy
        class FromEntryPoint(Strategy):
            '''Installed from a package.'''
    """))  # fmt: skip
    dist = tmp_path / "ep_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[kinetic_empire.strategies]\nfrom_entry_point = ep_plugin_pkg:FromEntryPoint\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = build_registry()
    assert "from_entry_point" in reg
    assert "ep-plugin-pkg" in next(p.source for p in reg.plugins() if p.name == "from_entry_point")
    assert {"ema_cross", "rsi_reversion", "donchian_breakout"} <= set(reg.names())
    sys.modules.pop("ep_plugin_pkg", None)


@pytest.mark.parametrize("length", [30, 300, 1400, 3000])
def test_exact_ema_and_rsi_are_bit_identical_to_ta(length):
    """Live windows use the exact Python recursion; it must equal ``ta`` to the last bit.

    ``ema``/``rsi`` hand long inputs to ``ta`` itself, so the recursions are called directly here at
    every length (30 is below both switch-over lengths, 3000 above both), and the public functions
    are checked too, whichever path they take.
    """
    import pandas as pd
    from ta.momentum import RSIIndicator
    from ta.trend import EMAIndicator

    from kinetic_empire.data import load_klines, sample_data_dir
    from kinetic_empire.indicators import ema, rsi
    from kinetic_empire.strategy.indicators import _ema_exact, _rsi_exact

    close = load_klines(sample_data_dir(), symbol="NEARUSDT", timeframe="1m", end="2023-08-04").close[:length]
    assert len(close) == length
    for period in (2, 3, 9, 14, 20, 21, 50):
        expected_ema = EMAIndicator(pd.Series(close), window=period).ema_indicator().to_numpy()
        expected_rsi = RSIIndicator(pd.Series(close), window=period).rsi().to_numpy()
        assert np.array_equal(_ema_exact(close, period), expected_ema, equal_nan=True), ("exact ema", period)
        assert np.array_equal(_rsi_exact(close, period), expected_rsi, equal_nan=True), ("exact rsi", period)
        assert np.array_equal(ema(close, period), expected_ema, equal_nan=True), ("ema", period)
        assert np.array_equal(rsi(close, period), expected_rsi, equal_nan=True), ("rsi", period)
