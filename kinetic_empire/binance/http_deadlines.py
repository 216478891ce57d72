"""Request deadlines of the lean HTTP client (:mod:`.http_client`), watched by one task on the injected clock."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import Clock


@dataclass(slots=True)
class Deadline:
    """When one request is late, and the task to cancel then (None: only mark it ``expired``)."""

    at: float
    task: asyncio.Task[Any] | None
    done: bool = False
    expired: bool = False


@dataclass(slots=True)
class Deadlines:
    """Every request's deadline, watched by one task on the injected clock while any request is in flight. All
    requests share one timeout, so deadlines arrive in order: a FIFO, and the watcher sleeps until the oldest
    pending one. It is stopped when the last request settles (after its reply, off the latency path)."""

    clock: Clock
    queue: deque[Deadline] = field(default_factory=deque)
    watcher: asyncio.Task[None] | None = None
    pending: int = 0

    def add(self, seconds: float, *, task: asyncio.Task[Any] | bool | None = True) -> Deadline:
        """A deadline from now, cancelling ``task`` (True: the current one) when it passes; :meth:`arm` before the
        first wait (until then nothing can be late)."""
        d = Deadline(self.clock.monotonic() + seconds, asyncio.current_task() if task is True else task or None)
        self.queue.append(d)
        self.pending += 1
        return d

    def arm(self) -> None:
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.ensure_future(self._watch())

    def settle(self, d: Deadline) -> None:
        d.done = True
        self.pending -= 1
        if self.pending == 0:
            self.close()

    async def _watch(self) -> None:
        queue, clock = self.queue, self.clock
        while queue:
            head = queue[0]
            if head.done:
                queue.popleft()
                continue
            left = head.at - clock.monotonic()
            if left > 0:
                await clock.sleep(left)
                continue
            queue.popleft()
            head.expired = True
            if head.task is not None:
                head.task.cancel()

    def close(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        self.queue.clear()
