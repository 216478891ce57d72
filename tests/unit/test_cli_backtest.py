"""``kinetic backtest`` and friends as a user meets them: overrides, the summary, warnings, errors that
point at the strategy's own line, the lookahead report, ``data list`` and ``new-strategy``."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kinetic_empire.backtest import BacktestConfig
from kinetic_empire.cli import main
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.data import sample_data_dir

EXAMPLE = Path(__file__).parents[2] / "config" / "backtest.example.yaml"
DATA = str(sample_data_dir())
QUICK = ["backtest", "--no-save", "--no-progress", "--config", str(EXAMPLE), "--data", DATA]


def strategies_line(out: str) -> str:
    """The summary's first block: one strategy a line, the first after ``Strategies: ``."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Strategies: "))
    rest = itertools.takewhile(lambda line: line.startswith(" " * 12), lines[first + 1 :])
    return "\n".join([lines[first], *rest])


# ------------------------------------------------------------------------------ --param, --strategy


def test_params_go_to_the_strategies_that_declare_them(capsys) -> None:
    assert main([*QUICK, "--start", "2023-09-20", "--param", "fast=12", "--param", "slow=40"]) == 0
    line = strategies_line(capsys.readouterr().out)
    assert "ema_cross 1h on FILUSDT (fast=12, slow=40" in line
    assert "rsi_reversion 15m on NEARUSDT (period=14" in line  # untouched: it has no fast/slow


def test_a_param_for_one_strategy_and_unknown_names(capsys) -> None:
    assert main([*QUICK, "--start", "2023-09-20", "--param", "rsi_reversion.period=10"]) == 0
    assert "rsi_reversion 15m on NEARUSDT (period=10" in strategies_line(capsys.readouterr().out)
    assert main([*QUICK, "--param", "fats=3"]) == 2
    err = capsys.readouterr().err
    assert "--param fats: no strategy in this run has that parameter (ema_cross: fast, slow" in err
    assert main([*QUICK, "--param", "nope.fast=3"]) == 2
    assert "--param nope.fast: no strategy 'nope' in this run" in capsys.readouterr().err


def test_strategy_override_keeps_its_config_entry_or_its_own_timeframe(capsys) -> None:
    assert main([*QUICK, "--start", "2023-09-20", "--strategy", "rsi_reversion"]) == 0
    assert strategies_line(capsys.readouterr().out).startswith("Strategies: rsi_reversion 15m on NEARUSDT (")
    assert main([*QUICK, "--start", "2023-09-20", "--strategy", "donchian_breakout"]) == 0
    assert strategies_line(capsys.readouterr().out).startswith(
        "Strategies: donchian_breakout 1h on FILUSDT, NEARUSDT (")


def test_overrides_without_a_registry_keep_the_old_rule() -> None:
    config = BacktestConfig.load(EXAMPLE)
    both = config.with_overrides(params={"fast": "9"})
    assert [dict(s.params).get("fast") for s in both.strategies] == ["9", "9"]
    only = config.with_overrides(params={"fast": "9"}, declared=lambda n: ["fast"] if n == "ema_cross" else [])
    assert [dict(s.params).get("fast") for s in only.strategies] == ["9", None]
    with pytest.raises(ConfigError, match="no strategy in this run has that parameter"):
        config.with_overrides(params={"zzz": "1"}, declared=lambda n: [])


# ------------------------------------------------------------------------------------ the summary


def test_summary_shows_what_ran_what_is_open_and_denials(capsys) -> None:
    assert main([*QUICK]) == 0
    out = capsys.readouterr().out
    assert strategies_line(out).startswith("Strategies: ema_cross 1h on FILUSDT (fast=20, slow=50, long_only=False)")
    assert "Open positions at end" in out and "Risk denials" in out
    assert "Open at the end (marked at the last close; not counted in Trades):" in out
    assert "  FILUSDT LONG " in out and "unrealized" in out
    assert "Risk denials: none" in out


def test_dates_beyond_the_data_are_warned_about(capsys) -> None:
    assert main([*QUICK, "--start", "2023-07-01", "--end", "2023-12-01"]) == 0
    err = capsys.readouterr().err
    assert "warning: start 2023-07-01 00:00 is before the data: the run starts at its first kline, " \
           "2023-08-01 00:00 UTC" in err  # fmt: skip
    assert "warning: end 2023-12-01 00:00 is after the data: the run ends with its last kline, " \
           "2023-10-01 00:00 UTC" in err  # fmt: skip
    assert main([*QUICK, "--start", "2023-09-01", "--end", "2023-09-10"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_passing_lookahead_check_says_what_it_checked(capsys) -> None:
    assert main([*QUICK, "--start", "2023-09-20", "--check-lookahead"]) == 0
    out = capsys.readouterr().out
    assert "lookahead check passed:" in out
    assert "ema_cross on FILUSDT: 2 indicator series (ema(close, 20), ema(close, 50)) recomputed on the " \
           "history cut at" in out  # fmt: skip
    assert "rsi_reversion on NEARUSDT: 1 indicator series (rsi(close, 14))" in out


def test_a_strategy_error_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "boom.py").write_text(
        "from kinetic_empire import Strategy\n"
        "import numpy as np\n"
        "\n"
        "class Boom(Strategy):\n"
        "    timeframe = '1h'\n"
        "    def on_kline(self, kline):\n"
        "        np.log(self.close[-1] - 'x')\n"
    )
    assert main([*QUICK, "--strategy", "boom", "--strategy-path", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "strategy 'boom' raised TypeError" in err
    assert f"at {tmp_path / 'boom.py'}:7 in on_kline: np.log(self.close[-1] - 'x')" in err


# ------------------------------------------------------------------------- data list, new-strategy


def test_data_list_shows_the_bundled_sample(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()  # an empty store (a folder that does not exist is an error: issue 16)
    assert main(["data", "list", "--data-dir", str(tmp_path / "empty")]) == 0
    out = capsys.readouterr().out
    assert "no data in" in out and "bundled sample in" in out
    lines = out.splitlines()
    assert any(ln.split()[:5] == ["FILUSDT", "1m", "2023-08-01", "00:00:00Z", "2023-09-30"] for ln in lines)
    assert any(ln.startswith("NEARUSDT") for ln in lines)


def test_new_strategy_writes_a_template_that_backtests(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-strategy", "MyPullback", "--timeframe", "15m"]) == 0
    path = tmp_path / "strategies" / "my_pullback.py"
    text = path.read_text()
    assert "class MyPullback(Strategy):" in text and 'timeframe = "15m"' in text and "add_to_position" in text
    assert main(["new-strategy", "my_pullback"]) == 2  # never overwritten
    assert "exists; not overwritten" in capsys.readouterr().err
    assert path.read_text() == text
    assert main(["new-strategy", "ema_cross"]) == 2  # a name another strategy has
    assert "exists already" in capsys.readouterr().err
    for bad in ("../evil", ".hidden", "9lives", "has-dash"):
        assert main(["new-strategy", bad]) == 2, bad
        assert "kinetic new-strategy NAME" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "strategies").iterdir()) == ["my_pullback.py"]
    assert main([*QUICK, "--strategy", "my_pullback", "--start", "2023-09-01"]) == 0
    assert strategies_line(capsys.readouterr().out).startswith("Strategies: my_pullback 15m on FILUSDT, NEARUSDT")


def test_multi_timeframe_example_backtests_and_passes_the_lookahead_check(capsys) -> None:
    assert main([*QUICK, "--start", "2023-09-01", "--strategy", "mtf_trend", "--check-lookahead"]) == 0
    out = capsys.readouterr().out
    assert "ema(close, 20)@4h" in out and "identical with and without the future" in out
    trades = next(line for line in out.splitlines() if line.startswith("Trades"))
    assert int(trades.split()[-1]) >= 20, trades


def test_act_mask_modes_give_the_same_summary(capsys) -> None:
    """``--act-mask``: skipping idle klines (use), checking the mask (verify) and ignoring it (off) must agree."""
    outs = {}
    for mode in ("use", "verify", "off"):
        assert main([*QUICK, "--start", "2023-09-20", "--strategy", "ema_cross", "--act-mask", mode]) == 0
        outs[mode] = [line for line in capsys.readouterr().out.splitlines() if " klines in " not in line]
    assert outs["use"] == outs["verify"] == outs["off"]
    assert any("trades" in line.lower() for line in outs["use"])


def test_act_mask_rejects_an_unknown_mode(capsys) -> None:
    with pytest.raises(SystemExit):
        main([*QUICK, "--act-mask", "sometimes"])
    assert "--act-mask" in capsys.readouterr().err


def test_act_mask_flag_reaches_the_run(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A mask that wrongly says "never acts": ``use`` trusts it (no trades), ``verify`` fails naming it, ``off``
    ignores it. Without the flag wired through, the three would agree."""
    import numpy as np

    from kinetic_empire.backtest import skip

    monkeypatch.setattr(skip, "declared_mask", lambda strategy, n: np.zeros(n, dtype=bool))
    args = [*QUICK, "--start", "2023-09-20", "--strategy", "ema_cross"]
    assert main([*args, "--act-mask", "off"]) == 0
    off = capsys.readouterr().out
    assert main([*args, "--act-mask", "use"]) == 0
    used = capsys.readouterr().out
    drop = " klines in "  # the speed line differs anyway
    assert [x for x in off.splitlines() if drop not in x] != [x for x in used.splitlines() if drop not in x]
    assert main([*args, "--act-mask", "verify"]) != 0
    assert "act mask" in capsys.readouterr().err.lower()
