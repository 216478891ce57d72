"""An order's first step inside the bus handler that received it: the journal gate, then the signed write.

Why here and not in the placement task: a task hop costs a loop turn (and, under load, a scheduling slice)
between the strategy's decision and the order leaving. The handler may not publish (it runs inside the bus's
delivery of the request), so whatever it cannot do at once is written down in a :class:`FirstStep` for the
placement task (:meth:`~kinetic_empire.binance.execution.BinanceExecution.submit`), which reports every outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..core.errors import KineticError
from ..core.events import OrderRequest
from .rest import Started
from .wire import order_params


class FirstStep(NamedTuple):
    """What the handler did before the placement task: the gate passed (``gated``) or refused (``refused``),
    ``on_sent`` was told (``told``), the request written (``started``), or ``error``. A named tuple, not a frozen
    dataclass: it is made between a flip's two orders, and a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``."""

    gated: bool = False
    refused: KineticError | None = None
    told: bool = False
    started: Started | None = None
    error: Exception | None = None


UNSENT = FirstStep()


def first_step(r: OrderRequest, rest: Any, before_send: Callable[[Any], None],
               on_sent: Callable[[OrderRequest], None] | None) -> FirstStep:
    """The journal gate, then the signed request written on an idle kept-alive connection (``rest.send_signed_now``;
    a REST double without it, or no idle connection, leaves the write to the task). Never raises."""
    try:
        path, params = order_params(r)
    except Exception:  # the task meets it again and reports it
        return UNSENT
    try:
        before_send(r)
    except KineticError as exc:
        return FirstStep(refused=exc)
    except Exception as exc:
        return FirstStep(gated=True, error=exc)
    try:
        if on_sent is not None:
            on_sent(r)
        send_now = getattr(rest, "send_signed_now", None)
        started = None if send_now is None else send_now("POST", path, params, idempotent=False)
    except Exception as exc:  # nothing was written (the write is the last step)
        return FirstStep(gated=True, error=exc)
    return FirstStep(gated=True, told=True, started=started)


__all__ = ["UNSENT", "FirstStep", "first_step"]
