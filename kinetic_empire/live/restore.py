"""A resumed run's state from its journal, before the first reconciliation checks it against the venue.

What the journal says is only a belief: the reconciliation that follows compares it with the venue and
journals every difference. This puts that belief back in the components that act on it: ids no new command
may reuse, the protection guard's view of stops, the reduce-only market exits still in flight (so a close after
the restart is netted of them, as before it), the translator's orders, positions and known fills, the
risk manager's entries still waiting for their stop, symbols flagged by an earlier mismatch, and the day's
starting wallet for the daily-loss guard. Strategies' ``self.state`` comes back from
:func:`saved_strategy_states`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..binance.translate import UserTranslator
from ..core.rules import SymbolRules
from ..risk import RiskManager
from ..risk.guard import ProtectionGuard
from ..risk.protection import PendingEntry
from ..strategy.state import StateKeeper, latest_states
from .journal import read_events
from .reconcile import Reconciler
from .resume import JournalView


def restore_state(view: JournalView, *, reconciler: Reconciler, risk: RiskManager, guard: ProtectionGuard,
                  translator: UserTranslator, rules: Mapping[str, SymbolRules], today: int) -> None:
    """Put the journal's belief back into the engine's components (``today``: the UTC day number)."""
    reconciler.resume = view
    risk.commands.restore_ids([*view.requests, *view.intents, *view.terminal])  # a refused id is taken too
    guard.restore(view.requests.values(), accepted=view.accepted, terminal=view.terminal, filled=view.filled)
    protected = {q.intent_id for q in view.requests.values() if q.close_position}  # stops already requested
    for held, qty in view.positions.items():  # a position closed while we were away then shows as a change
        if qty:  # to flat in the first snapshot, instead of being skipped as a symbol we never held
            translator.positions[held] = (qty, Decimal(0))
    for r in view.open_orders():
        translator.expect(r)  # looked up by client id in the first reconciliation
        if r.close_position and r.order_type.is_conditional:
            risk.track_protective_order(r.symbol, r.client_order_id, r.strategy_id)
        intent = view.intents.get(r.intent_id)
        if (intent is not None and not r.reduce_only and not r.close_position and r.client_order_id not in
                view.filled and r.intent_id not in protected
                and (intent.stop_loss is not None or intent.take_profit is not None)):
            symbol_rules = rules[r.symbol]
            stop, tp = (None if p is None else symbol_rules.round_price_nearest(Decimal(repr(p)))
                        for p in (intent.stop_loss, intent.take_profit))
            risk.expect_entry(r.client_order_id, PendingEntry(r.intent_id, r.strategy_id, r.symbol, r.side, stop, tp))
    for r in view.open_exits():  # still in flight: a close after the restart is netted of them, as before it
        risk.track_exit(r, view.positions.get(r.symbol, Decimal(0)), view.filled.get(r.client_order_id, Decimal(0)))
    translator.known_fills(view.fills, view.filled)  # else the first snapshot records them twice
    for sym, change in view.symbol_states.items():
        if sym is not None and change.cause.startswith("RECONCILE_MISMATCH"):
            reconciler.flagged.add(sym)
            risk.set_state(change.state, change.cause, sym)
    if today in view.day_start_wallet:  # the daily loss counts from the day's start
        risk.restore_day_start(today, view.day_start_wallet[today])


def saved_strategy_states(journal_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Each (strategy id, symbol)'s last journaled ``self.state`` (none for a run that never saved one)."""
    return latest_states(read_events(journal_path, kinds=("StrategyStateSaved",)))


def restore_strategy_states(journal_path: Path, keepers: Sequence[StateKeeper]) -> int:
    """Give each strategy its last journaled state (before ``on_start``, which should only ``setdefault``);
    returns how many were restored."""
    states = saved_strategy_states(journal_path)
    restored = 0
    for keeper in keepers:
        saved = states.get((keeper.runner.strategy_id, keeper.runner.symbol))
        if saved is not None:
            keeper.restore(saved)
            restored += 1
    return restored
