"""``kinetic report``: options at module level (argparse only), the report imported in ``run``."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Rebuild the report of a paper run from its journal alone: trades, orders, equity, metrics, a chart and
an HTML page in runs/<run-id>/report/, and the summary table on the terminal. Works on runs that
crashed or are still running (the report covers what the journal holds so far)."""

EXAMPLES = """\
  kinetic report 20260101-120000-sandbox-ema_cross    # a run id under runs/
  kinetic report path/to/a/run/folder
  kinetic report my-run --runs-dir /data/runs"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", help="run id (folder under --runs-dir) or a run folder")
    p.add_argument("--runs-dir", default="runs", help="where run folders are (default runs/)")


def run(args: argparse.Namespace) -> int:
    from ..live.cli import report_main

    return report_main(args)
