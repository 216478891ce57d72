"""The Dask side of the optimiser: a worker plugin that carries the dataset, and the task that runs a trial.

Dask installs a registered plugin on every worker once (and on workers that join later), so the klines
travel to each worker once, not with every trial; each worker builds its TrialWorker (registry, parsed
symbol rules) in ``setup``. Imported only when ``--executor dask`` is used: it needs ``distributed``.
"""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin, get_worker

from .trial import Dataset, TrialOutcome, TrialTask, TrialWorker

PLUGIN_NAME = "kinetic-empire-dataset"


class DatasetPlugin(WorkerPlugin):
    name = PLUGIN_NAME

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.worker: TrialWorker | None = None

    def setup(self, worker: Any) -> None:
        self.worker = TrialWorker(self.dataset)

    def teardown(self, worker: Any) -> None:
        self.worker = None


def run_trial(task: TrialTask) -> TrialOutcome:
    """A Dask task: run one trial on this worker's dataset."""
    plugin = get_worker().plugins.get(PLUGIN_NAME)
    trial_worker = getattr(plugin, "worker", None)
    if not isinstance(trial_worker, TrialWorker):
        raise RuntimeError("the kinetic-empire dataset plugin is not set up on this Dask worker")
    return trial_worker.run(task)
