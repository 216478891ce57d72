"""Operator commands beyond flatten and cancel-all: pause, resume and halt, through the same door.

:class:`~kinetic_empire.core.events.OperatorCommand` is the one way in for anything an operator asks
(journaled before any handler sees it). :class:`RiskCommands` knows ``flatten`` and ``cancel_all``; this
desk adds the trading-state switches and hands everything else to it, so an operator's pause is an event
in the journal with its cause, followed by the ``TradingStateChanged`` it caused:

- ``pause``: REDUCING (only reducing and closing orders pass), account-wide or for one symbol;
- ``resume``: back to ACTIVE (the operator's own switch only: a latched guard or an engine pause stays);
- ``halt``: HALTED (nothing passes, not even closes; ``flatten`` lowers it to REDUCING to close).

It also builds an operator's cancel of one order (:meth:`OperatorDesk.cancel`), so every command to the
venue still comes out of the risk package.

:func:`install_operator_desk` puts the desk in place of the command handler the risk manager subscribed,
at the same point of the bus (after the journal).
"""

from __future__ import annotations

from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.enums import TradingState
from ..core.events import CancelRequest, OperatorCommand
from .commands import ACTIONS as COMMAND_ACTIONS
from .manager import RiskManager

PAUSE = "pause"
RESUME = "resume"
HALT = "halt"
STATE_ACTIONS: dict[str, TradingState] = {
    PAUSE: TradingState.REDUCING,
    RESUME: TradingState.ACTIVE,
    HALT: TradingState.HALTED,
}
ACTIONS = (*STATE_ACTIONS, *COMMAND_ACTIONS)


class OperatorDesk:
    """Bus handler for every :class:`OperatorCommand`: state switches here, orders by :class:`RiskCommands`."""

    def __init__(self, risk: RiskManager, bus: EventBus, clock: Clock) -> None:
        self._risk = risk
        self._bus = bus
        self._clock = clock

    def cancel(self, client_order_id: str, symbol: str, source: str) -> CancelRequest:
        """An operator's cancel of one order: a journaled :class:`CancelRequest`, as a strategy's would be.

        The caller has checked that the order is one of the run's and still open (the venue answers an
        unknown id with an error, which the execution port reports)."""
        now = self._clock.now_ms()
        request = CancelRequest(client_order_id=client_order_id, symbol=symbol, strategy_id=source,
                                ts_event=now, ts_init=now)
        self._bus.publish(request)
        return request

    def on_command(self, command: OperatorCommand) -> None:
        state = STATE_ACTIONS.get(command.action)
        if state is None:
            self._risk.commands.on_command(command)  # flatten, cancel_all, or its UNKNOWN_COMMAND denial
            return
        cause = f"OPERATOR {command.action.upper()} by {command.source}"
        if command.cause:
            cause += f": {command.cause}"
        for symbol in command.symbols or (None,):
            self._risk.set_state(state, cause, symbol)


def install_operator_desk(bus: EventBus, risk: RiskManager, clock: Clock) -> OperatorDesk:
    """Route OperatorCommand to a desk instead of straight to the risk manager's command handler."""
    desk = OperatorDesk(risk, bus, clock)
    bus.unsubscribe(OperatorCommand, risk.commands.on_command)
    bus.subscribe(OperatorCommand, desk.on_command)
    return desk
