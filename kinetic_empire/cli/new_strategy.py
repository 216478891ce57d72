"""``kinetic new-strategy NAME``: write a commented, working strategy template into strategies/.

Light at module level (argparse only). The name becomes the file ``<snake_name>.py`` and the class
``<CamelName>``; it must be a safe file name (core/names.py) and a Python identifier. An existing file
is never overwritten, and a name another strategy already has is refused (names are unique).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..core.errors import KineticError
from ..core.names import safe_name

DESCRIPTION = """\
Write a new strategy file from a commented template that runs as it is (an EMA trend filter with an
RSI pullback entry, a stop-loss and a take-profit, tagged entries and exits), ready to edit. The file
goes into strategies/ (or --dir) as <name>.py; `kinetic backtest --strategy <name>` runs it at once.
An existing file is never overwritten."""

EXAMPLES = """\
  kinetic new-strategy my_breakout
  kinetic new-strategy MeanRevert --timeframe 15m --dir ~/my-strategies
  kinetic backtest --strategy my_breakout            # backtest it on the config's symbols"""

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

TEMPLATE = '''\
"""{class_name}: {summary}

Written by `kinetic new-strategy`. Edit freely; `kinetic strategies` lists it with its parameters and
`kinetic backtest --strategy {name}` backtests it on the config's symbols at its own timeframe.
"""

from kinetic_empire import Param, Strategy
from kinetic_empire.indicators import ema, rsi


class {class_name}(Strategy):
    """Long pullbacks in an uptrend, short rallies in a downtrend (the docstring shows in `kinetic strategies`)."""

    # Registry name used in configs and on the command line (default: the class name in snake_case).
    name = "{name}"
    # The klines on_kline sees. A config entry's `timeframe:` overrides it per run.
    timeframe = "{timeframe}"
    # False (default): buy() while long and sell() while short are ignored, so a signal that stays true
    # does not pile up a position. True: each such call adds to the position (scaling in).
    add_to_position = False

    # Parameters: typed by their default, overridable in YAML (params:) and with --param NAME=VALUE.
    # min/max (or choices=) are checked on load; kinetic optimize searches within them.
    trend = Param(50, "trend EMA period", min=5, max=400)
    period = Param(14, "RSI period", min=2, max=100)
    dip = Param(45.0, "enter long when RSI is below this level in an uptrend", min=5, max=50)
    rally = Param(55.0, "enter short when RSI is above this level in a downtrend", min=50, max=95)
    stop_pct = Param(1.5, "stop-loss distance, percent of the close", min=0.1, max=20)
    target_pct = Param(3.0, "take-profit distance, percent of the close", min=0.1, max=50)

    def init(self):
        # Indicators are declared once: computed over the whole history before a backtest (recomputed on
        # a rolling window live) and revealed only up to the current kline: self.rsi_line[-1] is the
        # latest closed kline's value, self.rsi_line[-2] the one before; later values cannot be reached.
        self.trend_ema = self.I(ema, self.close, self.trend)
        self.rsi_line = self.I(rsi, self.close, self.period)

    def on_kline(self, kline):
        # Called for each closed kline after the warm-up. Market orders fill at the next kline's open.
        close = kline.close
        uptrend = close > self.trend_ema[-1]
        stop, target = self.stop_pct / 100, self.target_pct / 100
        if not self.position:
            if uptrend and self.rsi_line[-1] < self.dip:
                # Without a quantity the risk manager sizes the order (config risk.sizing). The stop and
                # take-profit are placed on the exchange when the entry fills. The tag names the entry in
                # the trades CSV and the report's breakdown.
                self.buy(stop_loss=close * (1 - stop), take_profit=close * (1 + target), tag="dip in uptrend")
            elif not uptrend and self.rsi_line[-1] > self.rally:
                self.sell(stop_loss=close * (1 + stop), take_profit=close * (1 - target), tag="rally in downtrend")
        elif self.position.is_long and not uptrend:
            self.close_position(tag="trend lost")  # the tag becomes the trade's exit_tag
        elif self.position.is_short and uptrend:
            self.close_position(tag="trend lost")

    # Optional hooks (remove what you do not use):
    # def on_start(self): ...                 once before the first kline; set up state here
    # def on_fill(self, fill): ...            one of this strategy's orders filled (self.position is updated)
    # def on_order_rejected(self, r): ...    an order was denied (r.source "risk") or rejected ("exchange")
    # def on_stop(self): ...                  once at the end of the backtest or run
'''


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="strategy name: letters, digits and _ (my_breakout or MyBreakout)")
    p.add_argument("--dir", default="strategies", help="folder to write into (default strategies/)")
    p.add_argument("--timeframe", default="1h", help="the strategy's timeframe (default 1h)")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def render(name: str, timeframe: str) -> str:
    """The template for ``name`` (snake_case) at ``timeframe``."""
    return TEMPLATE.format(name=name, class_name=camel(name), timeframe=timeframe,
                           summary="a new strategy from the template")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from ..core.timeframes import timeframe_ms
    from ..strategy.registry import build_registry, default_strategy_dirs

    given = safe_name(args.name, "strategy name", "kinetic new-strategy NAME")
    if not _IDENTIFIER.fullmatch(given):
        raise KineticError(f"kinetic new-strategy NAME: {given!r} must start with a letter and hold only letters, "
                           "digits and _ (it names a Python class and module)")  # fmt: skip
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise KineticError(f"--timeframe: {exc}") from None
    name = snake(given)
    folder = Path(args.dir)
    path = folder / f"{name}.py"
    if path.exists():
        raise KineticError(f"{path} exists; not overwritten (pick another name or delete the file)")
    defaults = {d.resolve() for d in default_strategy_dirs()}
    extra = [folder] if folder.is_dir() and folder.resolve() not in defaults else []
    taken = {info.name: info.source for info in build_registry(extra).plugins()}
    if name in taken:
        raise KineticError(f"a strategy named {name!r} exists already ({taken[name]}); names must be unique")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as fh:  # "x": never overwrites, even in a race
            fh.write(render(name, args.timeframe))
    except FileExistsError:
        raise KineticError(f"{path} exists; not overwritten") from None
    print(f"wrote {path}: class {camel(name)}, strategy name {name!r}, timeframe {args.timeframe}")
    print(f"next: edit it, then  kinetic backtest --strategy {name}" + (
        f" --strategy-path {folder}" if folder.resolve() != Path("strategies").resolve() else ""))
    return 0
