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
on the same run id is refused, naming the process that holds it. The run serves an operator API and a
dashboard on 127.0.0.1 (the login link, with the run's token, is printed once at start)."""

EXAMPLES = """\
  kinetic run --duration 60                           # a minute on the local sandbox, then the report
  kinetic run --config config/live.demo.yaml          # the Binance demo account (keys in .env)
  kinetic run --resume 20260101-120000-sandbox-ema_cross   # continue a crashed run from its journal
  kinetic run --shutdown flatten --api-port 0         # close everything at exit; dashboard on a free port"""


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
    p.add_argument("--api-port", type=int, metavar="PORT",
                   help="operator API and dashboard port (default: live.api_port, 8080, falling back to a free "
                        "port when taken; 0: a free port)")
    p.add_argument("--api-host", metavar="HOST",
                   help="address the API listens on (default 127.0.0.1; any other needs KINETIC_API_TOKEN)")
    p.add_argument("--no-api", action="store_true", help="no operator API or dashboard for this run")
    p.add_argument("--reconcile-every", type=float, metavar="SECONDS", default=300.0,
                   help="reconcile with the venue this often (default 300; 0: only at start and reconnects)")


def run(args: argparse.Namespace) -> int:
    from ..live.cli import run_main
    from .options import check_venue_options

    check_venue_options(args)
    return run_main(args)
