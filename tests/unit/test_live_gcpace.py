"""The live run's garbage-collection pacer: automatic collection is off while it runs, its own schedule frees cyclic
garbage, and Python's collector is given back (enabled, unfrozen) when the last pacer stops."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.live.gcpace import GcPacer


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


def test_collection_is_scheduled_not_triggered_by_allocations() -> None:
    pacer = GcPacer(ManualClock(start_ms=0))
    pacer.start()
    try:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        garbage = Node()
        gone = weakref.ref(garbage)
        del garbage
        _ = [[i] for i in range(50_000)]  # far past the automatic threshold: nothing collects on its own
        assert gone() is not None
        assert pacer.collect() == 0
        assert gone() is None
    finally:
        pacer.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_schedule_reaches_every_generation() -> None:
    pacer = GcPacer(ManualClock(start_ms=0), middle_every=4, full_every=12)
    pacer.start()
    try:
        assert [pacer.collect() for _ in range(12)] == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    finally:
        pacer.stop()


def test_the_run_task_collects_on_the_injected_clock() -> None:
    async def body() -> None:
        clock = ManualClock(start_ms=0)
        pacer = GcPacer(clock, young_every_s=0.25)
        pacer.start()
        task = asyncio.get_running_loop().create_task(pacer.run())
        try:
            await asyncio.sleep(0)
            assert pacer.collections == 0
            for _ in range(4):
                await clock.advance(0.25)
                await asyncio.sleep(0)
            assert pacer.collections == 4
        finally:
            pacer.stop()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(body())


def test_two_runs_in_one_process_give_collection_back_when_the_last_stops() -> None:
    first, second = GcPacer(ManualClock(start_ms=0)), GcPacer(ManualClock(start_ms=0))
    first.start()
    second.start()
    first.stop()
    assert not gc.isenabled()  # the second run still trades
    first.stop()  # twice: no effect
    assert not gc.isenabled()
    second.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_process_that_had_collection_off_keeps_it_off() -> None:
    gc.disable()
    pacer = GcPacer(ManualClock(start_ms=0))
    pacer.start()
    pacer.stop()
    assert not gc.isenabled()


def test_an_engine_never_shut_down_gives_collection_back_when_its_loop_ends() -> None:
    """asyncio.run cancels the pacer's task at the loop's end: that alone must turn collection back on (a test or
    an embedding program that stops early would otherwise leave the process without a collector)."""
    async def body() -> None:
        pacer = GcPacer(ManualClock(start_ms=0))
        pacer.start()
        asyncio.get_running_loop().create_task(pacer.run())
        await asyncio.sleep(0)
        assert not gc.isenabled()

    asyncio.run(body())
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_no_collection_starts_in_the_quiet_window_around_a_minute_boundary() -> None:
    """Klines close on minute boundaries: a collection falling due from 150 ms before one to 750 ms after it waits
    for the window's end; outside the window the schedule is unchanged."""
    async def body() -> None:
        clock = ManualClock(start_ms=59_500)  # 0.5 s before a boundary
        pacer = GcPacer(clock, young_every_s=0.25, quiet_ms=(150, 750))
        pacer.start()
        task = asyncio.get_running_loop().create_task(pacer.run())
        at: list[int] = []
        collect = pacer.collect

        def stamped() -> int:
            at.append(clock.now_ms())
            return collect()

        pacer.collect = stamped  # type: ignore[method-assign]
        try:
            for _ in range(12):
                await asyncio.sleep(0)
                await clock.advance(0.25)
                await asyncio.sleep(0)
            # due at 59.75 (outside), 60.0 (inside: waits to 60.75), then every 0.25 s again
            assert at == [59_750, 60_750, 61_000, 61_250, 61_500, 61_750, 62_000, 62_250, 62_500]
            assert pacer.deferred == 1
        finally:
            pacer.stop()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(body())


def test_the_quiet_window_wraps_the_boundary_and_is_off_by_default() -> None:
    clock = ManualClock(start_ms=119_900)
    pacer = GcPacer(clock, quiet_ms=(150, 750))
    assert pacer.quiet_left_s() == pytest.approx(0.85)
    assert GcPacer(ManualClock(start_ms=120_100), quiet_ms=(150, 750)).quiet_left_s() == pytest.approx(0.65)
    assert GcPacer(ManualClock(start_ms=120_750), quiet_ms=(150, 750)).quiet_left_s() == 0
    assert GcPacer(ManualClock(start_ms=119_849), quiet_ms=(150, 750)).quiet_left_s() == 0
    assert GcPacer(ManualClock(start_ms=120_100)).quiet_left_s() == 0
