"""``kinetic sandbox`` flags for the behaviours that differ from older sandboxes or add Binance's races:
``--market-fills``, ``--legacy-routes``, ``--unknown-visible-after-ms``, ``--updates-after-fill`` reach the
sandbox's config, bad values are one-line errors, and ``--help`` shows an example of each."""

from __future__ import annotations

import argparse
import re

import pytest

from kinetic_empire.cli import sandbox as options
from kinetic_empire.sandbox.cli import build_config, check_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_binance_like() -> None:
    cfg = build_config(parse())
    assert cfg.market_fills == "arrival" and cfg.legacy_routes is False
    assert cfg.faults.unknown_visible_after_ms == 0 and cfg.faults.updates_after_fill == 0
    assert cfg.faults.enabled is False


def test_flags_reach_the_config() -> None:
    args = parse("--market-fills", "next_update", "--legacy-routes", "--unknown-visible-after-ms", "1500",
                 "--updates-after-fill", "2", "--error-executed-rate", "0.1")
    check_args(args)
    cfg = build_config(args)
    assert cfg.market_fills == "next_update" and cfg.legacy_routes is True
    assert cfg.faults.unknown_visible_after_ms == 1500 and cfg.faults.updates_after_fill == 2
    assert cfg.faults.enabled is True
    assert build_config(parse("--updates-after-fill", "1")).faults.enabled is True  # on by itself


@pytest.mark.parametrize(("argv", "message"), [
    (("--updates-after-fill", "-1"), "--updates-after-fill -1: must be 0 (off) or more"),
    (("--unknown-visible-after-ms", "-5"), "--unknown-visible-after-ms -5: must be 0 (off) or more"),
])
def test_bad_values_are_one_line_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_args(parse(*argv))


def test_a_bad_choice_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("--market-fills", "later")


def test_help_shows_an_example_of_each_flag() -> None:
    parser = argparse.ArgumentParser(epilog="examples:\n" + options.EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_arguments(parser)
    out = parser.format_help()
    for flag in ("--market-fills", "--legacy-routes", "--unknown-visible-after-ms", "--updates-after-fill"):
        assert out.count(flag) >= 2, flag  # the option itself and an example line
