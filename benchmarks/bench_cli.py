"""Start-up time of the ``kinetic`` command line: what every ``--help`` and every short command pays.

    python benchmarks/bench_cli.py [--runs 20] [--repo PATH]

Runs each command N times in a fresh process (the ``kinetic`` console script next to this Python, else
``python -m kinetic_empire``) and prints wall time (median, p90) and CPU time (user+sys, median) per
command. CPU time holds steady on a busy machine; wall time is the figure a user feels (target: under
0.3 s for ``kinetic --help`` on a quiet machine). ``--repo`` measures another checkout, e.g. an
older commit unpacked with ``git archive``, for before/after figures. The load average is printed
with the figures, since wall times mean little without it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["strategies"], ["run", "--help"], ["backtest", "--help"])


def launcher() -> list[str]:
    script = Path(sys.executable).with_name("kinetic")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kinetic_empire"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], repo: Path, runs: int) -> tuple[list[float], list[float]]:
    env = dict(os.environ, PYTHONPATH=str(repo))
    walls, cpus = [], []
    for _ in range(runs + 1):  # the first run warms the file cache and is not counted
        cpu0, t0 = children_cpu(), time.perf_counter()
        subprocess.run([*launcher(), *argv], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu() - cpu0)
    return walls[1:], cpus[1:]


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per command (default 20)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure (default: this one)")
    args = parser.parse_args()
    print(f"{' '.join(launcher())} from {args.repo}, {args.runs} runs each, "
          f"load average before {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':<26}{'wall median':>12}{'wall p90':>10}{'cpu median':>12}")
    for argv in COMMANDS:
        walls, cpus = measure(argv, args.repo, args.runs)
        print(f"{'kinetic ' + ' '.join(argv):<26}{statistics.median(walls):>11.3f}s{p90(walls):>9.3f}s"
              f"{statistics.median(cpus):>11.3f}s")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
