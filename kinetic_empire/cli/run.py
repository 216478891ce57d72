"""``kinetic run``: options at module level (argparse only), the live engine imported in ``run``."""

from __future__ import annotations

import argparse

from .options import SHUTDOWN_POLICIES, add_venue_options

DESCRIPTION = """\
Paper-trade the strategies of a live config. By default the venue is the local sandbox exchange,
which replays the bundled klines (no keys, no network); --venue binance-demo trades on Binance's demo
account with keys from the environment or .env. Before trading, the doctor's checks run; then a status
view shows positions and orders until --duration ends or Ctrl-C. Everything is journaled in
runs/<run-id>/ (journal.sqlite, JSON logs, report/), and a run stopped by a crash continues with
--resume after reconciling with the exchange. One process at a time owns a run: a second `kinetic run`
on the same run id is refused, naming the process that holds it."""

EXAMPLES = """\
  kinetic run --duration 60                           # a minute on the local sandbox, then the report
  kinetic run --config config/live.demo.yaml          # the Binance demo account (keys in .env)
  kinetic run --resume 20260101-120000-sandbox-ema_cross   # continue a crashed run from its journal
  kinetic run --shutdown flatten --no-status          # close everything at exit; plain log output"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_venue_options(p)
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--run-id",
                   help="folder name under the runs dir: letters, digits, . _ - + (default: time-venue-strategies)")
    p.add_argument("--runs-dir", help="where run folders go (default: live.runs_dir, runs/)")
    p.add_argument("--shutdown", choices=SHUTDOWN_POLICIES,
                   help="at exit: leave (protective orders stay on the exchange) or flatten (cancel all, close all)")
    p.add_argument("--no-preflight", action="store_true", help="skip the doctor's checks before trading")
    p.add_argument("--no-status", action="store_true", help="no live status view")
    p.add_argument("--resume", metavar="RUN_ID", help="continue this run from its journal (reconciled first)")
    p.add_argument("--reconcile-every", type=float, metavar="SECONDS", default=300.0,
                   help="reconcile with the venue this often (default 300; 0: only at start and reconnects)")


def run(args: argparse.Namespace) -> int:
    from ..live.cli import run_main

    return run_main(args)
