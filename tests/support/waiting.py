"""Waiting for things to happen in tests: on a condition, never on a number of seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], what: str, *, hang_after_s: float = 20.0) -> None:
    """Let real loopback I/O happen until ``condition`` holds (the bound only turns a hang into a failure)."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), hang_after_s)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
