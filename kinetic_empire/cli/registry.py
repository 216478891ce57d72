"""The sub-commands of ``kinetic``: name, one-line summary and the module that defines each.

``kinetic --help`` needs only the names and summaries, so nothing here imports a command. A command's
module is imported when that command is used (or its ``--help`` asked for); it must stay light (argparse
only at module level) and import its heavy work inside ``run``. A module that fails to import is an
error naming the command, never a command that silently disappears.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from typing import Protocol, cast

from ..core.errors import KineticError


class CommandModule(Protocol):
    """What a command's module provides."""

    DESCRIPTION: str  # the paragraph under ``usage:`` in ``kinetic <cmd> --help``, written for users
    EXAMPLES: str  # example command lines, one per line, shown after the options

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    summary: str
    module: str  # dotted path of a light module implementing CommandModule


COMMANDS: tuple[Command, ...] = (
    Command("backtest", "replay historical klines through strategies, risk manager and the simulated exchange",
            "kinetic_empire.cli.backtest"),
    Command("strategies", "list strategy plugins with their parameters and documentation",
            "kinetic_empire.cli.strategies"),
    Command("new-strategy", "write a commented strategy template into strategies/", "kinetic_empire.cli.new_strategy"),
    Command("run", "paper-trade strategies live: on the local sandbox (default) or the Binance demo",
            "kinetic_empire.cli.run"),
    Command("doctor", "check that a venue, your keys and your config are ready to trade", "kinetic_empire.cli.doctor"),
    Command("report", "rebuild the report of a paper run from its journal", "kinetic_empire.cli.report"),
    Command("compare", "line up a paper run's trades with a backtest's and explain each difference",
            "kinetic_empire.cli.compare"),
    Command("sandbox", "run the local Binance USD-M futures exchange (REST + WebSocket) on replayed klines",
            "kinetic_empire.cli.sandbox"),
    Command("download", "download klines, mark-price klines and funding rates from Binance into the local store",
            "kinetic_empire.cli.download"),
    Command("data", "list the local store, or import archive files downloaded by hand", "kinetic_empire.cli.data"),
    Command("optimize", "search strategy parameters with Optuna (walk-forward, local pool or Dask)",
            "kinetic_empire.cli.optimize"),
)


class CommandUnavailable(KineticError):
    """A command's code cannot be imported: the installation is broken, not the user's input."""


_REQUIRED = ("DESCRIPTION", "EXAMPLES", "add_arguments", "run")


def load(command: Command) -> CommandModule:
    """Import a command's module; any failure becomes :class:`CommandUnavailable` naming the command."""
    try:
        module = importlib.import_module(command.module)
    except Exception as exc:
        raise CommandUnavailable(
            f"kinetic {command.name} is unavailable: importing {command.module} failed: {type(exc).__name__}: {exc}"
        ) from exc
    missing = [name for name in _REQUIRED if not hasattr(module, name)]
    if missing:
        raise CommandUnavailable(f"kinetic {command.name} is unavailable: {command.module} lacks {', '.join(missing)}")
    return cast(CommandModule, module)
