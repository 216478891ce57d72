"""Options several commands share. Light on purpose: argparse only, so ``--help`` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path

LIVE_CONFIG = "config/live.sandbox.yaml"
# Copies of constants whose home modules import aiohttp; tests/integration/test_cli_startup.py checks they stay equal.
VENUES = ("sandbox", "binance-demo", "binance-testnet", "custom")  # binance.venues.VENUES
ENV_KEY, ENV_SECRET = "KINETIC_BINANCE_API_KEY", "KINETIC_BINANCE_API_SECRET"  # binance.signing
SHUTDOWN_POLICIES = ("leave", "flatten")  # live.config.SHUTDOWN_POLICIES
DOWNLOAD_SOURCES = ("auto", "archive", "rest")  # download.plan.SOURCES
REST_URL = "https://fapi.binance.com"  # download.rest.DEFAULT_REST_URL
ARCHIVE_URL = "https://data.binance.vision"  # download.archive.DEFAULT_ARCHIVE_URL
DATA_DIR = "data_store"  # where kinetic download and kinetic data keep the store


def add_strategy_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strategy-path",
        action="append",
        default=[],
        metavar="DIR",
        help="extra folder of strategy files (repeatable); strategies/ is always searched",
    )


def check_venue_options(args: argparse.Namespace) -> None:
    """Ranges and named files of the venue options, before any work (KineticError: one line)."""
    from ..core.errors import KineticError

    if args.speed is not None and not args.speed >= 0:
        raise KineticError(f"--speed {args.speed}: must be 0 (stepped) or more")
    if args.env_file != ".env" and not Path(args.env_file).is_file():  # the default may be absent; a named one not
        raise KineticError(f"--env-file {args.env_file}: no such file")
    for name in ("duration", "reconcile_every", "timeout"):
        value = getattr(args, name, None)
        if (value is not None and not value >= 0) or (name in ("duration", "timeout") and value == 0):
            flag = "--" + name.replace("_", "-")
            raise KineticError(f"{flag} {value}: must be " + ("0 (off) or more" if name == "reconcile_every"
                                                                 else "more than 0"))


def add_venue_options(p: argparse.ArgumentParser) -> None:
    """Config, venue and credentials: what ``kinetic run`` and ``kinetic doctor`` both need."""
    p.add_argument("--config", default=LIVE_CONFIG, help=f"live YAML config (default {LIVE_CONFIG})")
    p.add_argument("--venue", choices=VENUES,
                   help="sandbox (local, the default) | binance-demo | binance-testnet | custom (give the URLs)")
    p.add_argument("--rest-url", help="REST base URL (custom venue, or to override a preset)")
    p.add_argument("--ws-url", help="stream host URL (custom venue, or to override a preset)")
    p.add_argument("--env-file", default=".env", help=f"file with {ENV_KEY} / {ENV_SECRET} (default .env)")
    p.add_argument("--speed", type=float, help="sandbox replay speed (market time per wall time; 0 = stepped)")
    add_strategy_path(p)
