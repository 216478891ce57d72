"""The ``kinetic`` command line: one entry point, one sub-command per job.

Starting must be instant, so the parser is built in two passes: the first knows only the command names
and summaries (enough for ``kinetic --help`` and for finding the command), the second adds the chosen
command's options from its light module (:mod:`kinetic_empire.cli.registry`). Heavy libraries load only
inside the command's ``run``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import traceback
from collections.abc import Mapping, Sequence

from ..core.errors import KineticError
from ..logs import setup_logging
from .registry import COMMANDS, Command, CommandModule, CommandUnavailable, load

_EPILOG = """\
Start here:
  kinetic backtest                      backtest the example config on the bundled real klines
  kinetic strategies                    list strategy plugins, their parameters and docs
  kinetic run --duration 60             paper-trade for a minute on the local sandbox exchange
  kinetic sandbox --data backtests/data run the local Binance USD-M exchange on its own

Every command has its own --help, with examples.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Prose re-flowed to the terminal's width; indented lines (command examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        prose: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line and not line.startswith(" "):
                prose.append(line)
                continue
            if prose:
                out.append(textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent))
                prose = []
            out.append(indent + line if line else "")
        return "\n".join(out).rstrip("\n")


def build_parser(
    commands: Sequence[Command] = COMMANDS, loaded: Mapping[str, CommandModule] | None = None
) -> argparse.ArgumentParser:
    """The ``kinetic`` parser; only the commands in ``loaded`` get their options."""
    parser = argparse.ArgumentParser(
        prog="kinetic",
        description="Kinetic Empire: backtesting and paper trading for Binance USD-M perpetual futures.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--log-file", help="also write structured JSON logs to this file")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        module = (loaded or {}).get(command.name)
        if module is None:  # first pass: the command is known by name; its options come later
            sub.add_parser(command.name, help=command.summary, add_help=False)
            continue
        p = sub.add_parser(
            command.name,
            help=command.summary,
            description=module.DESCRIPTION,
            epilog="examples:\n" + module.EXAMPLES.strip("\n"),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(p)
    return parser


def _fail(message: str, exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc)
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None, commands: Sequence[Command] = COMMANDS) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _rest = build_parser(commands).parse_known_args(argv)  # exits on --help or an unknown command
    if first.command is None:
        build_parser(commands).print_help()
        return 2
    command = next(c for c in commands if c.name == first.command)
    try:
        module = load(command)
    except CommandUnavailable as exc:
        return _fail(str(exc), exc, first.debug)
    args = build_parser(commands, {command.name: module}).parse_args(argv)
    setup_logging(args.verbose, args.log_file)
    try:
        return int(module.run(args) or 0)
    except KineticError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # a library the command needs is missing or broken: say which
        return _fail(f"kinetic {command.name}: {type(exc).__name__}: {exc}", exc, args.debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head/less that closed early
        sys.stderr.close()
        return 0
