"""Where trials run: in this process, on a local process pool, or on a Dask distributed cluster.

Each executor ships the :class:`Dataset` to every worker once (pool initializer; Dask worker plugin),
where a :class:`TrialWorker` is built once and then runs any number of trials; a task is only the trial's
parameters and dates. Outcomes come back as they finish; the study decides what to ask next only at batch
boundaries, so the executor and the number of workers never change a study's results.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from ..core.errors import KineticError
from .trial import Dataset, TrialOutcome, TrialTask, TrialWorker


class ExecutorError(KineticError):
    """The executor cannot run trials: a cluster that cannot be reached, a worker that died."""


class Executor(Protocol):
    """Runs trial tasks on a dataset shipped once; yields outcomes in completion order."""

    name: str

    @property
    def workers(self) -> int: ...

    def connect(self) -> None:
        """Reach the workers (a cluster) before any data is loaded: a bad address fails fast."""

    def start(self, dataset: Dataset) -> None: ...

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """One worker: this process. No copy of the data, no start-up cost."""

    name = "local"

    def __init__(self) -> None:
        self._worker: TrialWorker | None = None

    @property
    def workers(self) -> int:
        return 1

    def connect(self) -> None:
        pass

    def start(self, dataset: Dataset) -> None:
        self._worker = TrialWorker(dataset)

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        assert self._worker is not None, "start() first"
        for task in tasks:
            yield self._worker.run(task)

    def close(self) -> None:
        self._worker = None


# A pool worker's own TrialWorker, set once by the pool's initializer in that worker process.
_POOL_WORKER: TrialWorker | None = None


def _pool_init(dataset: Dataset) -> None:
    global _POOL_WORKER
    _POOL_WORKER = TrialWorker(dataset)


def _pool_ready() -> bool:
    return _POOL_WORKER is not None


def _pool_run(task: TrialTask) -> TrialOutcome:
    if _POOL_WORKER is None:
        raise RuntimeError("pool worker not initialised")
    return _POOL_WORKER.run(task)


class PoolExecutor:
    """A local process pool; the dataset goes to each worker once, through the pool's initializer."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def connect(self) -> None:
        pass

    def start(self, dataset: Dataset) -> None:
        # forkserver: workers do not inherit this process's threads (progress bar, SQLite) or locks
        context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=_pool_init,
                                         initargs=(dataset,))  # fmt: skip
        ready = [self._pool.submit(_pool_ready) for _ in range(self._workers)]  # start every worker now
        if not all(f.result() for f in ready):
            raise ExecutorError("a pool worker did not load the dataset")

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        assert self._pool is not None, "start() first"
        futures: list[Future[TrialOutcome]] = [self._pool.submit(_pool_run, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor:
    """Trials on a Dask distributed cluster (``dask scheduler`` + ``dask worker``) at ``address``."""

    name = "dask"

    def __init__(self, address: str, connect_timeout_s: float = 5.0) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None

    @property
    def workers(self) -> int:
        if self._client is None:
            return 0
        return len(self._client.scheduler_info().get("workers", {}))

    def connect(self) -> None:
        if self._client is not None:
            return
        try:
            from distributed import Client
        except ImportError as exc:
            raise ExecutorError(f"--executor dask needs dask[distributed] installed: {exc}") from None
        try:
            self._client = Client(self.address, timeout=f"{self.connect_timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {self.address} within "
                                f"{self.connect_timeout_s:g} s ({type(exc).__name__}: {exc}); "
                                "start one with `dask scheduler` and `dask worker ADDRESS`") from None  # fmt: skip
        if self.workers == 0:
            try:
                self._client.wait_for_workers(1, timeout=self.connect_timeout_s)
            except (TimeoutError, OSError):
                self.close()
                raise ExecutorError(f"the Dask scheduler at {self.address} has no workers; "
                                    "start some with `dask worker ADDRESS`") from None  # fmt: skip

    def start(self, dataset: Dataset) -> None:
        self.connect()
        from .dask_worker import PLUGIN_NAME, DatasetPlugin

        self._client.register_plugin(DatasetPlugin(dataset), name=PLUGIN_NAME)

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        from distributed import as_completed as dask_completed

        from .dask_worker import run_trial

        futures = [self._client.submit(run_trial, t, pure=False, key=f"kinetic-trial-{t.number}-{id(t)}")
                   for t in tasks]  # fmt: skip
        try:
            for fut in dask_completed(futures, loop=self._client.loop):
                try:
                    yield fut.result()
                except (OSError, TimeoutError) as exc:
                    raise ExecutorError(f"lost the Dask cluster at {self.address}: {exc}") from None
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            from .dask_worker import PLUGIN_NAME

            with contextlib.suppress(Exception):  # the cluster may already be gone; closing must not fail
                client.unregister_worker_plugin(PLUGIN_NAME)
            client.close()


def make_executor(kind: str, workers: int, address: str | None) -> Executor:
    if kind == "dask":
        if not address:
            raise ExecutorError("--executor dask needs --address tcp://HOST:8786")
        return DaskExecutor(address)
    if workers < 1:
        raise ExecutorError(f"--workers must be at least 1, got {workers}")
    return InlineExecutor() if workers == 1 else PoolExecutor(workers)
