"""kinetic optimize on a real Dask cluster: a LocalCluster of two worker processes on loopback gives the
same study as the inline executor for the same seed; an unreachable scheduler is a clear error in seconds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_optimize import load, run_study, study_file  # same folder: pytest puts it on sys.path

from kinetic_empire.cli import main
from kinetic_empire.research import DaskExecutor, Dataset, ExecutorError, InlineExecutor


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c:  # fmt: skip
        yield c.scheduler_address


def test_a_study_on_a_two_worker_dask_cluster_equals_the_inline_one(cluster: str, tmp_path: Path) -> None:
    config, settings = load(study_file(tmp_path))
    dataset = Dataset.load(config)
    executor = DaskExecutor(cluster)
    on_dask = run_study(config, settings, dataset, tmp_path / "dask", executor)
    inline = run_study(config, settings, dataset, tmp_path / "inline", InlineExecutor())
    assert on_dask == inline
    assert len(on_dask) == 8 and all(state == "COMPLETE" for _, state, _, _ in on_dask)


def test_trials_ran_on_both_workers_with_the_dataset_shipped_once(cluster: str, tmp_path: Path) -> None:
    from distributed import Client

    config, _settings = load(study_file(tmp_path))
    executor = DaskExecutor(cluster)
    executor.start(Dataset.load(config))
    try:
        assert executor.workers == 2
        with Client(cluster, set_as_default=False) as client:
            loaded = client.run(lambda dask_worker: dask_worker.plugins["kinetic-empire-dataset"].worker is not None)
        assert list(loaded.values()) == [True, True]
    finally:
        executor.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    began = time.monotonic()
    with pytest.raises(ExecutorError) as err:
        DaskExecutor(address, connect_timeout_s=2).connect()
    assert time.monotonic() - began < 15
    assert f"cannot reach the Dask scheduler at {address} within 2 s" in str(err.value)

    began = time.monotonic()
    code = main(["optimize", "--config", str(study_file(tmp_path)), "--executor", "dask", "--address", address,
                 "--results-dir", str(tmp_path / "out")])  # fmt: skip
    assert time.monotonic() - began < 15
    err_text = capsys.readouterr().err
    assert code == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in err_text and "Traceback" not in err_text
    assert not (tmp_path / "out").exists()
