"""``kinetic strategies``: list the strategy plugins; the registry is imported in ``run``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_strategy_path

DESCRIPTION = """\
List every strategy you can name in a config or with --strategy: its timeframe, where it comes from,
its documentation and its parameters with defaults and bounds. Strategies come from Python files in
strategies/ (and --strategy-path folders), from installed packages exposing entry points in the group
'kinetic_empire.strategies', and from explicit package.module:Class references."""

EXAMPLES = """\
  kinetic strategies
  kinetic strategies --strategy-path ~/my-strategies      # also list the strategies in that folder"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_strategy_path(p)


def run(args: argparse.Namespace) -> int:
    from ..strategy.registry import build_registry

    registry = build_registry([Path(p) for p in args.strategy_path])
    for info in registry.plugins():
        cls = info.cls
        doc = " ".join((cls.__doc__ or "").split())
        print(f"{info.name}  (timeframe {cls.timeframe}, API v{cls.api_version})")
        print(f"  source: {info.source}")
        if doc:
            print(f"  {doc}")
        for name, param in cls.parameters().items():
            bounds = []
            if param.min is not None:
                bounds.append(f"min {param.min}")
            if param.max is not None:
                bounds.append(f"max {param.max}")
            extra = f" [{', '.join(bounds)}]" if bounds else ""
            setting = f"{name}={param.default!r}"
            print(f"    --param {setting:<22} {param.type.__name__:<6} {param.doc}{extra}")
        print()
    return 0
