"""``kinetic`` starts at once: help and the short commands import no heavy library, every command's
help is written for users, and a command whose code cannot be imported is an error, not a gap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinetic_empire.cli import build_parser, main
from kinetic_empire.cli.registry import COMMANDS, Command, CommandUnavailable, load

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"matplotlib", "aiohttp", "pyarrow", "ccxt"}


def imported_modules(*argv: str) -> tuple[set[str], str]:
    """Top-level packages ``kinetic *argv`` imports (from ``python -X importtime``), and its stdout."""
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="100")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "kinetic_empire", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rpartition("|")[2].strip().split(".")[0] for line in proc.stderr.splitlines()
             if line.startswith("import time:")}
    assert "kinetic_empire" in names  # the parse found the importtime lines
    return names, proc.stdout


@pytest.mark.parametrize("argv", [["--help"], *([c.name, "--help"] for c in COMMANDS)], ids=" ".join)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    names, out = imported_modules(*argv)
    assert not names & (HEAVY | {"pandas"}), sorted(names & (HEAVY | {"pandas"}))
    assert "usage: kinetic" in out


def test_listing_strategies_imports_nothing_heavy() -> None:
    names, out = imported_modules("strategies")
    assert not names & HEAVY, sorted(names & HEAVY)
    assert "ema_cross" in out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_has_user_help_with_examples(command: Command) -> None:
    module = load(command)
    assert module.DESCRIPTION.strip() and not module.DESCRIPTION.lstrip().startswith("``")
    examples = [line for line in module.EXAMPLES.splitlines() if line.strip()]
    assert 2 <= len(examples) <= 4, examples
    assert all(line.startswith("  kinetic ") for line in examples)
    assert any(f"kinetic {command.name}" in line for line in examples)


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command.name} " in out


def test_copied_constants_match_their_homes() -> None:
    """The light option module copies a few constants whose home modules import aiohttp."""
    from kinetic_empire.binance.signing import ENV_KEY, ENV_SECRET
    from kinetic_empire.binance.venues import VENUES
    from kinetic_empire.cli import options
    from kinetic_empire.download.archive import DEFAULT_ARCHIVE_URL
    from kinetic_empire.download.plan import SOURCES
    from kinetic_empire.download.rest import DEFAULT_REST_URL
    from kinetic_empire.live.config import SHUTDOWN_POLICIES

    assert options.VENUES == VENUES and options.SHUTDOWN_POLICIES == SHUTDOWN_POLICIES
    assert (options.ENV_KEY, options.ENV_SECRET) == (ENV_KEY, ENV_SECRET)
    assert options.DOWNLOAD_SOURCES == SOURCES
    assert (options.REST_URL, options.ARCHIVE_URL) == (DEFAULT_REST_URL, DEFAULT_ARCHIVE_URL)


# ----------------------------------------------------------------------------- broken sub-commands


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Command, ...]:
    """The real commands plus two that cannot load: one fails to import, one lacks ``run``."""
    (tmp_path / "kinetic_probe_broken.py").write_text("import kinetic_probe_not_installed\n")
    (tmp_path / "kinetic_probe_incomplete.py").write_text("DESCRIPTION = EXAMPLES = ''\ndef add_arguments(p): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return (*COMMANDS, Command("broken", "cannot import", "kinetic_probe_broken"),
            Command("incomplete", "lacks run", "kinetic_probe_incomplete"))


@pytest.mark.parametrize("argv", [["broken"], ["broken", "--help"], ["broken", "--any", "option"]])
def test_a_command_that_cannot_import_is_an_error_naming_it(
    broken: tuple[Command, ...], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv, commands=broken) == 1
    err = capsys.readouterr().err
    assert "kinetic broken is unavailable: importing kinetic_probe_broken failed" in err
    assert "No module named 'kinetic_probe_not_installed'" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(broken: tuple[Command, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "broken"], commands=broken) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "kinetic_probe_not_installed" in err


def test_a_command_module_without_run_is_an_error(broken: tuple[Command, ...],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incomplete"], commands=broken) == 1
    assert "kinetic incomplete is unavailable: kinetic_probe_incomplete lacks run" in capsys.readouterr().err
    with pytest.raises(CommandUnavailable, match="lacks run"):
        load(broken[-1])


def test_the_other_commands_still_work_beside_a_broken_one(broken: tuple[Command, ...],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategies"], commands=broken) == 0
    assert "ema_cross" in capsys.readouterr().out


def readme_commands() -> list[list[str]]:
    """``kinetic ...`` lines of the README's code blocks, as argument lists (comments and ``&&`` split off)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for line in text.splitlines():
        for part in line.split("#")[0].split("&&"):
            words = part.split()
            if words[:1] == ["kinetic"] and "--help" not in words:
                found.append(words[1:])
    return found


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_readme_commands_parse(argv: list[str]) -> None:
    command = next(c for c in COMMANDS if c.name == argv[0])
    args = build_parser(COMMANDS, {command.name: load(command)}).parse_args(argv)
    assert args.command == command.name
