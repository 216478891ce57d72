"""The engine with one known bug planted, for the soak's negative tests (tests only, never the product).

    python -m tests.support.planted_run --plant dropped_fill -- run --config soak.yaml ...

Each plant monkeypatches one product function the way a real regression would break it, then runs
:func:`kinetic_empire.cli.main` with the arguments after ``--``. The product carries no test hooks: if a
plant's target is renamed, applying the plant fails loudly (AttributeError) instead of planting nothing.
A soak that passes with a plant in place has failed to do its job.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any


def _patch(owner: Any, name: str, replacement: Any) -> None:
    """Replace ``owner.name``; a target that no longer exists fails loudly instead of planting nothing."""
    if not hasattr(owner, name):
        raise AttributeError(f"plant target {getattr(owner, '__name__', owner)}.{name} does not exist any more")
    setattr(owner, name, replacement)


def _resend_new_id() -> None:
    """After an unknown outcome (5xx, timeout), send the order again under a new client id instead of looking
    the first one up: when the first did execute, one intent executes twice."""
    from kinetic_empire.binance.execution import BinanceExecution

    async def _resolve_unknown(self: BinanceExecution, r: Any, cause: Any) -> None:
        again = replace(r, client_order_id=r.client_order_id[:30] + "-again")
        self._bus.publish(again)  # journaled by the bus like any request, then sent

    _patch(BinanceExecution, "_resolve_unknown", _resolve_unknown)


def _dropped_fill() -> None:
    """Lose some fills (every trade id divisible by 5, so the same fills in every process): neither the stream
    nor a reconciliation's snapshot records them."""
    from kinetic_empire.binance.translate import UserTranslator

    original = UserTranslator._fill

    def _fill(self: UserTranslator, st: Any, symbol: str, order_id: int, trade_id: int, *rest: Any) -> None:
        if trade_id % 5 == 0:
            self._trades.add((symbol, trade_id))
            return
        original(self, st, symbol, order_id, trade_id, *rest)

    _patch(UserTranslator, "_fill", _fill)


def _no_stop_replacement() -> None:
    """The protection guard (which reconciliation and its own timer call) no longer re-places a missing stop."""
    from kinetic_empire.risk.guard import ProtectionGuard

    def check(self: ProtectionGuard) -> list[Any]:
        return []

    _patch(ProtectionGuard, "check", check)


def _reused_client_id() -> None:
    """A resumed process numbers its intents and re-placed orders from 1 again (counters not read back from
    the journal): client ids of the run repeat."""
    from kinetic_empire.live.resume import JournalView
    from kinetic_empire.risk.commands import RiskCommands

    def last_seq(self: JournalView, prefix: str) -> int:
        return 0

    def restore_ids(self: RiskCommands, ids: Any) -> None:
        return None

    _patch(JournalView, "last_seq", last_seq)
    _patch(RiskCommands, "restore_ids", restore_ids)


def _send_before_journal() -> None:
    """Commands are journaled like any other event (written by the half-second flush, after they were sent)
    and the port no longer waits for the journal: an order can be on the venue with no journal row."""
    from kinetic_empire.live import journal

    _patch(journal, "_COMMANDS", ())

    def confirm(self: journal.Journal, command: Any) -> None:
        return None

    _patch(journal.Journal, "confirm", confirm)


SLOW_STOP_S = float(os.environ.get("SOAK_SLOW_STOP_S", "4"))  # the focused test's; a soak may ask for more


def _slow_clean_stop() -> None:
    """Not a bug, a condition: every clean stop takes ``SLOW_STOP_S`` longer, as one did while an order of
    unknown outcome was looked up (before shutdown stopped its look-ups), or as one may on a loaded machine. A
    soak driver that lets the replay run meanwhile can reach the end of the data before it resumes the engine."""
    from kinetic_empire.live.app import LiveEngine

    original = LiveEngine.shutdown

    async def shutdown(self: LiveEngine, policy: str | None = None) -> None:
        if self.started:
            await self.timer.sleep(SLOW_STOP_S)
        await original(self, policy)

    _patch(LiveEngine, "shutdown", shutdown)


PLANTS: dict[str, Callable[[], None]] = {
    "slow_clean_stop": _slow_clean_stop,
    "resend_new_id": _resend_new_id,
    "dropped_fill": _dropped_fill,
    "no_stop_replacement": _no_stop_replacement,
    "reused_client_id": _reused_client_id,
    "send_before_journal": _send_before_journal,
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    ap = argparse.ArgumentParser(prog="python -m tests.support.planted_run", description=__doc__.splitlines()[0])
    ap.add_argument("--plant", required=True, choices=sorted(PLANTS))
    opts = ap.parse_args(args[:cut])
    PLANTS[opts.plant]()
    print(f"PLANTED BUG: {opts.plant}", flush=True)
    from kinetic_empire.cli import main as kinetic_main

    return kinetic_main(args[cut + 1:])


if __name__ == "__main__":
    sys.exit(main())
