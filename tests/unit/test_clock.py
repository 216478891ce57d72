"""The injected clocks: a test clock that moves only when told, a replay clock that never waits."""

from __future__ import annotations

import asyncio

from kinetic_empire.core.clock import Clock, LiveClock, ManualClock, ReplayClock


def test_manual_clock_wakes_sleepers_in_deadline_order_without_wall_time() -> None:
    async def scenario() -> list[tuple[str, float]]:
        clock = ManualClock(start_ms=1_000)
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append((name, clock.monotonic()))

        tasks = [asyncio.create_task(sleeper("late", 65.0)), asyncio.create_task(sleeper("early", 1.5))]
        await asyncio.sleep(0)
        assert clock.sleepers == 2
        await clock.advance(1.0)
        assert woke == []
        await clock.advance(100.0)
        await asyncio.gather(*tasks)
        assert clock.now_ms() == 102_000
        return woke

    assert asyncio.run(scenario()) == [("early", 2.5), ("late", 66.0)]


def test_replay_clock_sleep_moves_time_instead_of_waiting() -> None:
    clock = ReplayClock(5_000)
    asyncio.run(clock.sleep(2.5))
    assert clock.now_ms() == 7_500 and clock.monotonic() == 7.5


def test_every_clock_satisfies_the_protocol() -> None:
    clocks: list[Clock] = [LiveClock(), ReplayClock(), ManualClock()]
    for clock in clocks:
        assert isinstance(clock.now_ms(), int) and isinstance(clock.monotonic(), float)
