"""kinetic optimize on the bundled real klines: a trial is `kinetic backtest` trade for trade, a seed fixes
the study on any local executor, an interrupted study keeps its trials and resumes, a foreign study file
is refused, and the command writes its table, best config and an offline report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from optuna.trial import TrialState

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.results import metrics_of
from kinetic_empire.cli import main
from kinetic_empire.research import (
    Dataset,
    InlineExecutor,
    Optimizer,
    PoolExecutor,
    StudyMismatch,
    TrialTask,
    TrialWorker,
    open_study,
    prepare,
)
from kinetic_empire.research.objectives import parse_objective
from kinetic_empire.research.settings import OptimizeSettings, split_study_file
from kinetic_empire.research.study import finished_count
from kinetic_empire.research.trial import TrialOutcome
from kinetic_empire.strategy.registry import build_registry

ROOT = Path(__file__).resolve().parents[2]
DATA = str(ROOT / "backtests" / "data")


def study_file(tmp_path: Path, **optimize: object) -> Path:
    """One month of FILUSDT 1h: a study of ema_cross small enough for a test."""
    doc = {
        "backtest": {"data": DATA, "start": "2023-08-01", "end": "2023-09-01", "initial_balance": 10000},
        "strategies": [
            {"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h", "params": {"fast": 20, "slow": 50}}
        ],
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 20}},
        "optimize": {
            "objectives": ["sharpe"],
            "trials": 8,
            "batch": 4,
            "seed": 3,
            "space": {"fast": {"min": 4, "max": 30}, "slow": {"min": 20, "max": 120, "step": 5}},
            **optimize,
        },
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def load(path: Path) -> tuple[BacktestConfig, OptimizeSettings]:
    backtest, optimize = split_study_file(str(path))
    return BacktestConfig.from_mapping(backtest, str(path)), OptimizeSettings.from_mapping(optimize, str(path))


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BacktestConfig, OptimizeSettings, Dataset]:
    path = study_file(tmp_path_factory.mktemp("study"))
    config, settings = load(path)
    return path, config, settings, Dataset.load(config)


def run_study(config: BacktestConfig, settings: OptimizeSettings, dataset: Dataset, directory: Path,
              executor: object, name: str = "s") -> list[tuple[int, str, dict, list | None]]:  # fmt: skip
    plan = prepare(config, settings, {}, (), directory)
    executor.start(dataset)  # type: ignore[attr-defined]
    try:
        result = Optimizer(plan, dataset, executor, name).run()  # type: ignore[arg-type]
    finally:
        executor.close()  # type: ignore[attr-defined]
    return [(t.number, t.state.name, t.params, t.values) for t in result.studies[-1].get_trials()]


def test_a_trial_is_kinetic_backtest_trade_for_trade(month, tmp_path: Path) -> None:
    path, config, settings, dataset = month
    params = {"fast": 12, "slow": 40}
    worker = TrialWorker(dataset)
    task = TrialTask(0, params, 0, settings.objectives)
    via_trial = worker.backtest(task).run()
    direct = Backtest(config.with_overrides(params={"fast": "12", "slow": "40"}), build_registry()).run()
    assert via_trial.portfolio.trades == direct.portfolio.trades
    assert len(direct.portfolio.trades) > 5
    assert via_trial.portfolio.orders == direct.portfolio.orders
    assert np.array_equal(via_trial.equity, direct.equity)
    outcome = worker.run(task)
    expected = metrics_of(direct)
    assert outcome.values == [expected["sharpe"]]
    assert outcome.trade_count == expected["trade_count"]

    # and the command itself, in its own process, on a config without the optimize section
    plain = tmp_path / "plain.yaml"
    doc = yaml.safe_load(path.read_text())
    del doc["optimize"]
    plain.write_text(yaml.safe_dump(doc))
    run = subprocess.run([sys.executable, "-m", "kinetic_empire", "backtest", "--config", str(plain),
                          "--param", "fast=12",
                          "--param", "slow=40", "--results-dir", str(tmp_path), "--run-id", "bt", "--no-progress"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    cli = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    for key in ("trade_count", "final_equity", "sharpe", "fees", "max_drawdown_pct"):
        assert cli[key] == pytest.approx(outcome.metrics[key], rel=1e-9, abs=1e-9), key  # metrics.json keeps 12 digits


def test_a_trial_on_a_multi_strategy_config_changes_only_its_strategy(month) -> None:
    _path, config, _settings, _ = month
    both = BacktestConfig.load(ROOT / "config" / "backtest.example.yaml")
    both = replace(both, data=(DATA,), end=config.end)
    rsi = replace(both.strategies[1], params={**both.strategies[1].params, "overbought": 65.0})  # not searched
    both = replace(both, strategies=(both.strategies[0], rsi))
    dataset = Dataset.load(both)
    task = TrialTask(0, {"period": 10, "oversold": 25.0}, 1, (parse_objective("total_return", "o"),))
    via_trial = TrialWorker(dataset).backtest(task).run()
    strategies = list(both.strategies)
    strategies[1] = replace(strategies[1], params={**strategies[1].params, "period": 10, "oversold": 25.0})
    direct = Backtest(replace(both, strategies=tuple(strategies)), build_registry()).run()
    assert via_trial.portfolio.trades == direct.portfolio.trades
    assert {t.symbol for t in direct.portfolio.trades} == {"FILUSDT", "NEARUSDT"}
    assert np.array_equal(via_trial.equity, direct.equity)


def test_same_seed_same_study_inline_and_on_a_two_process_pool(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    inline = run_study(config, settings, dataset, tmp_path / "a", InlineExecutor())
    pool = run_study(config, settings, dataset, tmp_path / "b", PoolExecutor(2))
    assert inline == pool
    assert len(inline) == 8 and all(state == "COMPLETE" for _, state, _, _ in inline)
    assert len({tuple(p.items()) for _, _, p, _ in inline}) > 4  # the sampler explored
    other_seed = run_study(config, replace(settings, seed=4, trials=4), dataset, tmp_path / "c", InlineExecutor())
    assert [p for _, _, p, _ in other_seed] != [p for _, _, p, _ in inline[:4]]


class Interrupting(InlineExecutor):
    """Ctrl-C after ``after`` trials have come back (in reverse order within a batch if ``reverse``)."""

    def __init__(self, after: int, reverse: bool = False) -> None:
        super().__init__()
        self.after = after
        self.reverse = reverse
        self.count = 0

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        outcomes = super().run(tasks)
        for out in reversed(list(outcomes)) if self.reverse else outcomes:
            if self.count == self.after:
                raise KeyboardInterrupt
            self.count += 1
            yield out


def test_an_interrupted_study_keeps_finished_trials_and_resumes(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    with pytest.raises(KeyboardInterrupt):
        run_study(config, settings, dataset, tmp_path, Interrupting(after=6))
    plan = prepare(config, settings, {}, (), tmp_path)
    study = open_study(plan, "s")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6  # every finished trial kept, nothing else
    assert finished_count(study) == 6
    kept = [(t.number, t.params, t.values) for t in trials]

    resumed = run_study(config, settings, dataset, tmp_path, InlineExecutor())
    assert [(n, p, v) for n, _, p, v in resumed[:6]] == kept
    assert [r[1] for r in resumed] == ["COMPLETE"] * 8  # topped up to the target


def test_trials_finished_out_of_order_before_an_interruption_are_kept(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    with pytest.raises(KeyboardInterrupt):  # batch 2 comes back as 7, 6, then Ctrl-C: 4 and 5 never finish
        run_study(config, settings, dataset, tmp_path, Interrupting(after=6, reverse=True))
    plan = prepare(config, settings, {}, (), tmp_path)
    trials = open_study(plan, "s").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    resumed = run_study(config, settings, dataset, tmp_path, InlineExecutor())
    assert [r[1] for r in resumed] == ["COMPLETE"] * 8


def test_a_study_stopped_between_batches_resumes_as_if_never_stopped(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    once = run_study(config, settings, dataset, tmp_path / "once", InlineExecutor())
    run_study(config, replace(settings, trials=4), dataset, tmp_path / "twice", InlineExecutor())
    twice = run_study(config, settings, dataset, tmp_path / "twice", InlineExecutor())
    assert once == twice


def test_a_study_file_of_another_strategy_is_refused(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    run_study(config, replace(settings, trials=1), dataset, tmp_path, InlineExecutor())
    other = BacktestConfig.load(ROOT / "config" / "backtest.example.yaml")
    other = replace(other, strategies=other.strategies[1:])  # rsi_reversion only
    with pytest.raises(StudyMismatch) as err:
        open_study(prepare(other, replace(settings, space={}), {}, (), tmp_path), "s")
    assert "study 's' optimises strategy 'ema_cross', not 'rsi_reversion'" in str(err.value)
    with pytest.raises(StudyMismatch, match=r"optimises \['sharpe'\], not \['sortino'\]"):
        open_study(prepare(config, replace(settings, objectives=(parse_objective("sortino", "o"),)), {}, (), tmp_path),
                   "s")  # fmt: skip
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "study.db").write_text("not a database")
    with pytest.raises(StudyMismatch, match="not an Optuna study database"):
        open_study(prepare(config, settings, {}, (), tmp_path / "junk"), "s")


def test_constraints_and_a_two_objective_pareto_front(month, tmp_path: Path) -> None:
    _path, config, settings, dataset = month
    two = replace(settings, objectives=(parse_objective("sharpe", "o"), parse_objective("max_drawdown", "o")),
                  constraints=(), trials=8)  # fmt: skip
    plan = prepare(config, two, {}, (), tmp_path)
    executor = InlineExecutor()
    executor.start(dataset)
    result = Optimizer(plan, dataset, executor, "pareto").run()
    assert plan.settings.sampler_name == "nsga2" and result.best
    values = [t.values for t in result.best]
    for v in values:  # nobody on the front is dominated by anybody else in the study
        for t in result.studies[0].get_trials(states=(TrialState.COMPLETE,)):
            assert not (t.values[0] >= v[0] and t.values[1] >= v[1] and t.values != v)
    strict = replace(
        settings, constraints=OptimizeSettings.from_mapping({"constraints": {"min_trades": 10_000}}).constraints
    )
    result = Optimizer(prepare(config, strict, {}, (), tmp_path / "strict"), dataset, executor, "strict").run()
    assert result.best == [] and result.best_params is None  # infeasible trials are never best


def test_the_command_writes_table_best_config_and_an_offline_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = study_file(tmp_path, trials=6, walk_forward={"windows": 2, "out_of_sample": 0.5})
    out = tmp_path / "out"
    code = main(["optimize", "--config", str(path), "--workers", "1", "--results-dir", str(out), "--name", "wf",
                 "--no-progress"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    assert "walk-forward" in stdout and "stitched out-of-sample" in stdout
    folder = out / "wf"
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(rows) == 12
    assert {"number", "state", "sharpe", "param_fast", "param_slow", "trade_count", "window"} <= set(rows[0])
    summary = json.loads((folder / "summary.json").read_text())
    windows = summary["walk_forward"]["windows"]
    assert [w["window"] for w in windows] == [1, 2]
    assert windows[0]["out_of_sample"][1] == windows[1]["out_of_sample"][0]
    report = (folder / "report.html").read_text()
    assert '<script src="plotly.min.js"></script>' in report and "https://" not in report.split("<body>")[0]
    assert (folder / "plotly.min.js").stat().st_size > 1_000_000
    for title in ("Objective history", "Parameter importance", "Parallel coordinates", "Two-parameter heatmap",
                  "In-sample vs out-of-sample"):  # fmt: skip
        assert title in report
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["strategies"][0]["params"] == summary["best_params"]
    assert "optimize" not in best
    assert main(["backtest", "--config", str(folder / "best.yaml"), "--no-save", "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "fast=30:10"], "error: --space.fast: inverted range: min 30 is above max 10"),
        (["--space", "fast=12", "--space", "slow=40"], "the search space is empty"),
        (["--space", "speed=1:5"], "strategy 'ema_cross' has no parameter 'speed'"),
        (["--objective", "sharpness"], "unknown objective 'sharpness'"),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = study_file(tmp_path)
    code = main(["optimize", "--config", str(path), "--results-dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_hopeless_trials_are_pruned_at_checkpoints_below_the_median(tmp_path: Path) -> None:
    from tests.conftest import klines_from_closes

    rng = np.random.default_rng(5)
    closes = np.round(5.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 45_000))), 3)
    frame = klines_from_closes(closes, spread=0.002)
    config = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 100_000},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 100}},
    })  # fmt: skip
    settings = OptimizeSettings.from_mapping({
        "objectives": ["total_return"], "trials": 8, "batch": 2, "seed": 1,
        "pruning": {"enabled": True, "startup_trials": 2},
        "space": {"fast": {"min": 2, "max": 30}, "slow": {"min": 31, "max": 300}},
    })  # fmt: skip
    dataset = Dataset(config, {"FILUSDT": frame}, {})
    executor = InlineExecutor()
    executor.start(dataset)
    plan = prepare(config, settings, {}, (), tmp_path)
    study = Optimizer(plan, dataset, executor, "p").run().studies[0]
    trials = study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    for t in pruned:  # stopped at the first checkpoint where it was below the median of earlier complete trials
        step, value = max(t.intermediate_values.items())
        earlier = [c.intermediate_values[step] for c in complete if c.number < t.number - t.number % 2]
        assert len(earlier) >= 2 and value < float(np.median(earlier))
        assert step < 45_000 and "metrics" not in t.user_attrs
    for t in complete:
        assert sorted(t.intermediate_values) == [20_000, 40_000]


def test_the_progress_bar_shows_rate_and_best_so_far(month, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kinetic_empire.research import StudyProgress

    _path, config, settings, dataset = month
    progress = StudyProgress(settings.objectives, force=True)
    executor = InlineExecutor()
    executor.start(dataset)
    Optimizer(prepare(config, replace(settings, trials=4), {}, (), tmp_path), dataset, executor, "bar", progress).run()
    err = capsys.readouterr().err
    assert "4/4" in err and "trial/s" in err and "best sharpe" in err
