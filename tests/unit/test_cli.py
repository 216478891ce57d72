"""The ``kinetic`` command line, run in-process as a user would."""

from __future__ import annotations

import json

from kinetic_empire.cli import main


def test_backtest_command_writes_results(tmp_path, capsys):
    code = main(["backtest", "--no-progress", "--results-dir", str(tmp_path), "--run-id", "cli",
                 "--start", "2023-09-15"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Total return" in out and "Max drawdown" in out and "klines in" in out
    run = tmp_path / "cli"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["trade_count"] >= 1
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    # the same run id again is refused, not overwritten
    assert main(["backtest", "--no-progress", "--results-dir", str(tmp_path), "--run-id", "cli"]) == 2
    assert "exists" in capsys.readouterr().err


def test_bad_input_gets_a_specific_message(capsys, tmp_path):
    assert main(["backtest", "--no-save", "--param", "fast=abc"]) == 2
    assert "strategies[0].params.fast: expected int, got 'abc'" in capsys.readouterr().err
    assert main(["backtest", "--no-save", "--strategy", "nope"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err
    assert main(["backtest", "--no-save", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["backtest", "--no-save", "--param", "novalue"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_strategies_command_lists_plugins_and_parameters(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in ("ema_cross", "rsi_reversion", "donchian_breakout"):
        assert name in out
    assert "--param fast=20" in out


def test_help_without_a_command(capsys):
    assert main([]) == 2
    assert "kinetic backtest" in capsys.readouterr().out
