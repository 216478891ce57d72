"""``kinetic doctor``: options at module level (argparse only), the checks imported in ``run``."""

from __future__ import annotations

import argparse

from .options import add_venue_options

DESCRIPTION = """\
Check, without trading, that a venue is ready for `kinetic run` with this config: its server time
and your clock, every symbol trading, the API keys, one-way position mode, a USDT balance, margin
type and leverage settable, and both the market stream and the user stream delivering events. Each
failed check says how to fix it. Exit code 0 when all pass, 1 otherwise."""

EXAMPLES = """\
  kinetic doctor                                      # the local sandbox with config/live.sandbox.yaml
  kinetic doctor --config config/live.demo.yaml       # the Binance demo account (keys in .env)
  kinetic doctor --venue custom --rest-url http://127.0.0.1:8080 --ws-url ws://127.0.0.1:8080"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_venue_options(p)
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each stream's first event")


def run(args: argparse.Namespace) -> int:
    from ..live.cli import doctor_main
    from .options import check_venue_options

    check_venue_options(args)
    return doctor_main(args)
