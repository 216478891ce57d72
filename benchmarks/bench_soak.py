"""Fault-injection soak with hard kills: the long run of issue 7, as one command.

    python benchmarks/bench_soak.py [--seed 7] [--hours 24] [--kills 6] [--fault-rate 1] [--speed 600]

A persistent sandbox (its own process, ``--state``/``--keys``) replays FILUSDT and NEARUSDT 1m klines at
``--speed`` x real time with seeded faults (5xx with and without execution, timeouts, 429 bursts, clock
skew, WebSocket drops and stalls, early listenKey expiry, partial fills). ``kinetic run --venue custom``
trades it and is SIGKILLed ``--kills`` times at seeded moments, each time restarted with ``--resume``.
At the end the journal is audited against the venue; prints the report and exits 1 if the audit failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.soak import run_soak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=24.0, help="hours of 1m klines replayed (default 24)")
    ap.add_argument("--kills", type=int, default=6, help="SIGKILLs of the engine (default 6)")
    ap.add_argument("--fault-rate", type=float, default=1.0, help="scale of every fault rate (default 1)")
    ap.add_argument("--speed", type=float, default=600.0, help="replay speed, x real time (default 600)")
    ap.add_argument("--workdir", type=Path, help="keep logs, journal and sandbox state here (default: temp)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kinetic-soak-"))
    report = run_soak(args.seed, args.hours, args.kills, workdir, args.fault_rate, speed=args.speed, verbose=True)
    print(report.format())
    print(f"files: {workdir} (engine.log, sandbox.log, runs/soak-{args.seed}/journal.sqlite)")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
