"""The protection guard and moved stops: a moved (or trailing) stop becomes the stop the position wants, the
old one's cancel does not look like a missing stop, and a moved stop lost on the venue is re-placed as it was
moved (at the position's size), never as the old one."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

from test_protection_guard import FIL, Desk, started  # type: ignore[import-not-found]

from kinetic_empire.core.enums import OrderType
from kinetic_empire.core.events import CancelRequest, ProtectionIntent
from tests.support.risk_fakes import only_request


def _move(desk: Desk, iid: str, **kw) -> object:
    now = desk.h.clock.now_ms()
    events = desk.h.publish(ProtectionIntent(intent_id=iid, strategy_id="s1", symbol=FIL, kind="stop",
                                             reference_price=3.1, ts_event=now, ts_init=now, **kw))
    return only_request(events)


def test_a_moved_stop_lost_on_the_venue_is_replaced_as_moved(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        entry, old = desk.open_long()
        desk.accept(old)
        moved = _move(desk, "s1-2", price=3.0)  # break-even
        desk.accept(moved)
        assert [e.client_order_id for e in desk.of(CancelRequest)] == [old.client_order_id]
        desk.cancel(old)  # the venue confirms the old one's cancel
        for _ in range(4):
            await desk.tick(0.5)
        assert desk.guard.unprotected() == {} and len(desk.stops()) == 2  # nothing re-placed
        desk.cancel(moved)  # lost on the venue (cancelled by hand, say)
        await desk.tick(0.5)
        again = desk.stops()[-1]
        assert len(desk.stops()) == 3 and again.client_order_id.startswith(moved.client_order_id + "-rp")
        assert (again.trigger_price, again.reduce_only, again.quantity) == (D("3.000"), True, entry.quantity)
        task.cancel()

    asyncio.run(body())


def test_a_trailing_stop_counts_as_the_positions_stop(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        _entry, old = desk.open_long()
        desk.accept(old)
        trail = _move(desk, "s1-2", trail_pct=1.0)
        assert trail.order_type is OrderType.TRAILING_STOP_MARKET
        desk.accept(trail)
        desk.cancel(old)
        for _ in range(30):
            await desk.tick(0.5)
        assert desk.guard.unprotected() == {} and desk.alerts() == [] and len(desk.stops()) == 1
        task.cancel()

    asyncio.run(body())
