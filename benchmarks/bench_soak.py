"""Fault-injection soak with a forced-fault schedule and continuous invariants (issues 7 and 11), as one command.

    python benchmarks/bench_soak.py [--seed 7] [--hours 24] [--per-day 4] [--fault-rate 1] [--speed 300]

A persistent sandbox (its own process, ``--state``/``--keys``) replays FILUSDT and NEARUSDT 1m klines at
``--speed`` x real time with background faults (5xx with and without execution, timeouts, 429 bursts, clock
skew, WebSocket drops and stalls, early listenKey expiry, partial fills) at ``--fault-rate``, and a seeded
schedule forces each recovery path ``--per-day`` times per simulated day (engine SIGKILL and resume, a stop
cancelled while the engine is down, a second engine on the run, a full disk, forced 5xx/timeouts/429s, stream
drops and stalls, listenKey expiry, a slow venue; ``--sandbox-kill`` adds SIGKILLs of the sandbox). The journal
and the venue are compared about once a second while it runs and once more at the end. Prints per-kind fault
counts, kills, recovery p50/p99 and every invariant violation; exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.soak import DEFAULT_KINDS, run_soak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=24.0, help="hours of 1m klines replayed (default 24)")
    ap.add_argument("--per-day", type=float, default=4.0, help="forced events of each kind per simulated day")
    ap.add_argument("--fault-rate", type=float, default=1.0, help="scale of the background fault rates (default 1)")
    ap.add_argument("--speed", type=float, default=300.0, help="replay speed, x real time (default 300)")
    ap.add_argument("--stop-bound", type=float, default=30.0, help="engine up-time a position may lack its stop (s)")
    ap.add_argument("--sandbox-kill", action="store_true", help="also SIGKILL and restart the sandbox")
    ap.add_argument("--no-hold", action="store_true",
                    help="let the replay run at speed while an engine restarts (default: it trickles)")
    ap.add_argument("--workdir", type=Path, help="keep logs, journal and sandbox state here (default: temp)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kinetic-soak-"))
    kinds = (*DEFAULT_KINDS, "sandbox-kill") if args.sandbox_kill else DEFAULT_KINDS
    report = run_soak(args.seed, args.hours, workdir, fault_rate=args.fault_rate, per_day=args.per_day, kinds=kinds,
                      speed=args.speed, stop_bound_s=args.stop_bound, hold_start=not args.no_hold, verbose=True)
    print(report.format())
    print(f"files: {workdir} (engine.log, sandbox.log, runs/soak-{args.seed}/journal.sqlite)")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
