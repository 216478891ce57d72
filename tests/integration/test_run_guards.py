"""``kinetic`` commands as a user runs them: one process per run, and names that cannot escape their folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from kinetic_empire.cli import main
from tests.support.live import DATA, RISK, STRATEGIES
from tests.support.runlock import HOLDER_STARTED, lock_held_elsewhere

pytestmark = pytest.mark.integration

UNSAFE = ["../../x", "a/b", "..", "", "a" * 300]


def live_config(tmp_path: Path) -> Path:
    config = tmp_path / "live.yaml"
    config.write_text(yaml.safe_dump({
        "live": {"window": 120, "runs_dir": str(tmp_path / "runs")},
        "sandbox": {"data": str(DATA), "start": "2023-08-01T05:00:00", "speed": 1200},
        "strategies": STRATEGIES, "risk": RISK,
    }))
    return config


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_a_second_process_on_a_held_run_is_refused_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = live_config(tmp_path)
    run_dir = tmp_path / "runs" / "R"
    run_dir.mkdir(parents=True)
    journal = run_dir / "journal.sqlite"
    journal.write_bytes(b"not read while another process holds the run\x00" * 50)
    before = journal.read_bytes()
    with lock_held_elsewhere(run_dir, "R") as holder:
        for argv in (["--resume", "R"], ["--run-id", "R"]):
            rc = main(["run", "--config", str(config), *argv, "--no-status", "--duration", "1"])
            err = capsys.readouterr().err.strip().splitlines()
            assert rc != 0 and len(err) == 1, err
            assert err[0].startswith(f"error: run R is in use by process {holder.pid} on ") and HOLDER_STARTED in err[0]
            assert journal.read_bytes() == before and not (run_dir / "kinetic.log").exists()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # the killed holder's lock is gone: the resume gets past it, to the journal's own check
    assert main(["run", "--config", str(config), "--resume", "R", "--no-status", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "in use" not in err and "corrupt" in err and journal.read_bytes() == before


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_run_ids_are_refused_in_every_command_before_any_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    work = tmp_path / "work" / "in"
    work.mkdir(parents=True)
    config = live_config(tmp_path)
    monkeypatch.chdir(work)
    runs = str(work / "runs")
    commands = [
        ["run", "--config", str(config), "--run-id", bad, "--runs-dir", runs, "--no-status", "--duration", "1"],
        ["run", "--config", str(config), "--resume", bad, "--runs-dir", runs, "--no-status", "--duration", "1"],
        ["backtest", "--config", str(Path(__file__).parents[2] / "config" / "backtest.example.yaml"),
         "--run-id", bad, "--results-dir", str(work / "results")],
        ["report", bad, "--runs-dir", runs],
        ["compare", bad, "b1", "--runs-dir", runs, "--results-dir", str(work / "results")],
    ]
    before = files_under(tmp_path)
    for argv in commands:
        rc = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and len(err) == 1 and "run id" in err[0] and "cannot be used as a file name" in err[0], argv
        assert "Traceback" not in err[0]
        assert files_under(tmp_path) == before, argv


def test_an_unsafe_backtest_id_in_compare_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "journal.sqlite").write_bytes(b"")
    rc = main(["compare", "r1", "../../x", "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "kinetic compare BACKTEST: backtest id '../../x' cannot be used as a file name" in err
