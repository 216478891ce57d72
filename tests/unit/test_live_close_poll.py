"""The close poll (``live.close_poll``): the engine's loop polls without sleeping in a window around each minute
boundary, and in a window :meth:`ClosePoll.hold` opens, and sleeps between them. Driven by a manual clock: a window
stays open while time stands still, so the task's turns show whether it polls or sleeps."""

from __future__ import annotations

import asyncio

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.live.close_poll import ClosePoll
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.gcpace import KLINE_CLOSE_QUIET_MS

MINUTE = 60_000
T0 = 1_690_869_600_000  # a minute boundary


async def _turns(poll: ClosePoll, yields: int = 50) -> int:
    """The polling turns taken while this task yields ``yields`` times."""
    before = poll.turns
    for _ in range(yields):
        await asyncio.sleep(0)
    return poll.turns - before


@pytest.mark.parametrize(("phase_ms", "open_s", "next_s"), [
    (30_000, 0.0, 29.85),  # mid-minute: closed, the next window opens 150 ms before the boundary
    (MINUTE - 150, 0.9, 0.0),  # its first ms
    (MINUTE - 1, 0.751, 0.0),
    (0, 0.75, 0.0),  # the boundary
    (749, 0.001, 0.0),  # its last ms
    (750, 0.0, 59.1),  # closed again
])
def test_the_window_spans_150_ms_before_to_750_ms_after_each_minute_boundary(phase_ms, open_s, next_s) -> None:
    poll = ClosePoll(ManualClock(start_ms=T0 + phase_ms), KLINE_CLOSE_QUIET_MS)
    assert poll.open_for_s() == pytest.approx(open_s)
    if open_s == 0:
        assert poll.next_in_s() == pytest.approx(next_s)


def test_without_minute_windows_only_a_hold_opens_one() -> None:
    clock = ManualClock(start_ms=T0)  # on a boundary: a minute window would be open
    poll = ClosePoll(clock)
    assert poll.open_for_s() == 0 and poll.next_in_s() is None
    poll.hold(0.25)
    assert poll.open_for_s() == pytest.approx(0.25)
    poll.hold(0.1)  # a shorter hold does not cut the open one
    assert poll.open_for_s() == pytest.approx(0.25)


@pytest.mark.parametrize("window", [(-1, 750), (150, -1), (30_000, 30_000)])
def test_a_window_that_is_not_two_spans_under_a_minute_is_refused(window) -> None:
    with pytest.raises(ValueError, match="close_poll window"):
        ClosePoll(ManualClock(), window)


def test_the_task_polls_through_a_window_and_sleeps_between_windows() -> None:
    asyncio.run(_polls_through_a_window())


async def _polls_through_a_window() -> None:
    clock = ManualClock(start_ms=T0 + 30_000)
    poll = ClosePoll(clock, KLINE_CLOSE_QUIET_MS)
    task = asyncio.get_running_loop().create_task(poll.run())
    try:
        assert await _turns(poll) == 0  # mid-minute: asleep on the clock
        assert clock.sleepers == 1
        await clock.advance(29.85)  # the window opens
        assert await _turns(poll) > 10 and poll.windows == 1
        await clock.advance(0.5)  # 350 ms into the minute: still open
        assert await _turns(poll) > 10
        await clock.advance(0.5)  # 850 ms: closed
        await _turns(poll, 5)
        assert await _turns(poll) == 0 and poll.windows == 1
        await clock.advance(60.0)  # the next minute's window came and went while time jumped past it
        await clock.advance(29.0)
        assert await _turns(poll) == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_hold_wakes_the_sleeping_task_and_its_window_closes_on_time() -> None:
    asyncio.run(_held())


async def _held() -> None:
    clock = ManualClock(start_ms=T0 + 30_000)
    poll = ClosePoll(clock)  # no minute windows: asleep until held
    task = asyncio.get_running_loop().create_task(poll.run())
    try:
        assert await _turns(poll) == 0
        poll.hold(0.12)
        assert await _turns(poll) > 10 and poll.windows == 1
        await clock.advance(0.1)
        assert await _turns(poll) > 10
        await clock.advance(0.05)
        await _turns(poll, 5)
        assert await _turns(poll) == 0
        poll.hold(0.01)  # held again: a second window
        assert await _turns(poll) > 10 and poll.windows == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_live_close_poll_is_off_unless_configured_and_checked_when_it_is() -> None:
    strategies = [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m"}]
    assert LiveConfig.from_mapping({"strategies": strategies}).close_poll is False
    on = LiveConfig.from_mapping({"live": {"close_poll": True}, "strategies": strategies})
    assert on.close_poll is True and on.to_dict()["live"]["close_poll"] is True
    with pytest.raises(ConfigError, match=r"live\.close_poll: expected true or false"):
        LiveConfig.from_mapping({"live": {"close_poll": "yes"}, "strategies": strategies})


def test_a_window_rehearses_on_its_schedule_and_a_failing_rehearsal_is_dropped_not_fatal() -> None:
    asyncio.run(_rehearsed())


async def _rehearsed() -> None:
    clock = ManualClock(start_ms=T0 + 30_000)
    calls: list[float] = []
    poll = ClosePoll(clock, rehearse=lambda: calls.append(clock.monotonic()), rehearse_every_s=0.001)
    task = asyncio.get_running_loop().create_task(poll.run())
    try:
        poll.hold(0.01)
        await _turns(poll)
        assert len(calls) == 1  # time stands still: once, not once a turn
        for _ in range(4):
            await clock.advance(0.001)
            await _turns(poll, 5)
        assert len(calls) == 5 and poll.rehearsals == 5

        def broken() -> None:
            raise RuntimeError("no journal")

        poll.rehearse = broken
        await clock.advance(0.001)
        await _turns(poll, 5)
        assert poll.rehearse is None and poll.rehearsals == 5  # dropped at its first failure
        assert await _turns(poll) > 10  # and the window still polls
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
