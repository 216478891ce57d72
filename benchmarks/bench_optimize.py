"""Optimiser throughput: trials per minute of an EMA-cross study on seeded synthetic 1m klines, and the
cost of a trial beyond its replay.

    python benchmarks/bench_optimize.py [--klines 100000] [--trials 8] [--skip-dask]

Runs the same study (TPE, seed 42, batch 4) inline (1 worker), on a local pool of 2 processes and on a
Dask LocalCluster of 2 worker processes on loopback, and checks the three give identical trials. The
per-trial overhead is the study's wall time per trial (1 worker: ask, backtest set-up, indicators,
metrics, tell, SQLite) over the replay alone (the feed loop, as ``kinetic backtest`` reports it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_backtest
from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.research import (
    DaskExecutor,
    Dataset,
    InlineExecutor,
    OptimizeSettings,
    PoolExecutor,
    StudyProgress,
    StudyRunner,
    open_study,
    prepare,
)
from kinetic_empire.strategy.registry import build_registry


def config() -> BacktestConfig:
    """The backtest benchmark's spec (EMA 20/50 long-only, 100 units, 0.04 % per side)."""
    return bench_backtest.config(0)


def settings(trials: int) -> OptimizeSettings:
    return OptimizeSettings.from_mapping(
        {
            "objectives": ["sharpe"],
            "trials": trials,
            "batch": 4,
            "seed": 42,
            "pruning": {"enabled": False},
            "space": {"fast": {"min": 5, "max": 40}, "slow": {"min": 45, "max": 200, "step": 5}},
        }
    )


def run(label: str, executor: object, dataset: Dataset, trials: int, folder: Path) -> tuple[list, float, float]:
    """Set-up (SQLite study, workers with the data) timed apart from the trials: it is paid once per study."""
    plan = prepare(dataset.config, settings(trials), {}, (), folder / label.replace(" ", "_").replace(",", ""))
    began = time.perf_counter()
    study = open_study(plan, "bench")
    executor.start(dataset)  # type: ignore[attr-defined]
    setup = time.perf_counter() - began
    progress = StudyProgress(plan.settings.objectives, disabled=True)
    try:
        began = time.perf_counter()
        StudyRunner(plan, executor, on_outcome=progress.update).run(study, trials)  # type: ignore[arg-type]
        wall = time.perf_counter() - began
    finally:
        executor.close()  # type: ignore[attr-defined]
    trials_seen = [(t.number, t.params, t.values) for t in study.get_trials()]
    per_min = trials / wall * 60
    print(f"{label:<22} {trials} trials in {wall:6.1f} s   {per_min:6.1f} trials/min   (set-up {setup:.1f} s once; "
          f"replay {progress.replay_s / progress.trial_s:5.1%} of the time inside trials)")  # fmt: skip
    return trials_seen, wall, progress.replay_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs; {args.klines:,} 1m klines, {args.trials} trials per executor")  # fmt: skip
    frame = synthetic_klines(args.klines, 42)
    dataset = Dataset(config(), {"FILUSDT": frame}, {})

    began = time.perf_counter()
    plain = Backtest(config(), build_registry(), frames={"FILUSDT": frame}).run()
    plain_wall = time.perf_counter() - began
    print(f"one kinetic-backtest run: replay {plain.elapsed_s:.2f} s, whole run {plain_wall:.2f} s "
          f"({plain.klines_processed:,} klines, {len(plain.portfolio.trades)} trades)")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inline, wall, replay_s = run("local, 1 worker", InlineExecutor(), dataset, args.trials, folder)
        per_trial, replay_per_trial = wall / args.trials, replay_s / args.trials
        print(f"  per trial {per_trial:.2f} s = replay {replay_per_trial:.2f} s + overhead "
              f"{per_trial - replay_per_trial:.2f} s ({(per_trial / replay_per_trial - 1):.1%} of the replay; "
              f"target < 20 %)")  # fmt: skip
        pool, _, _ = run("local pool, 2 workers", PoolExecutor(2), dataset, args.trials, folder)
        assert pool == inline, "the pool's study differs from the inline one"
        if not args.skip_dask:
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:  # fmt: skip
                dask, _, _ = run("dask, 2 workers", DaskExecutor(cluster.scheduler_address), dataset, args.trials,
                                 folder)  # fmt: skip
            assert dask == inline, "the Dask study differs from the inline one"
        print("identical trials (params and values) on every executor")


if __name__ == "__main__":
    main()
