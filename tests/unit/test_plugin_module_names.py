"""A strategy file's module gets the same name in every process: a worker (dask, multiprocessing) unpickles a
class by that name, and str hash() is salted per process, so the name must come from a real digest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys; from pathlib import Path; from kinetic_empire.strategy.registry import _strategies_in_file; "
    "print(sorted({c.__module__ for c in _strategies_in_file(Path(sys.argv[1]))}))"
)


def module_names(path: Path, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return done.stdout.strip()


def test_a_strategy_file_has_one_module_name_across_processes() -> None:
    path = ROOT / "strategies" / "rsi_reversion.py"
    names = {module_names(path, seed) for seed in ("0", "1", "2", "3")}
    assert len(names) == 1, names
    (name,) = names
    assert "kinetic_user_strategies.rsi_reversion_" in name
