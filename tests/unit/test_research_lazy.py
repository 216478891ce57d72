"""A worker process runs backtests: importing the trial module must not load Optuna, Dask or plotly."""

from __future__ import annotations

import subprocess
import sys


def test_the_trial_module_loads_without_the_optimiser_libraries() -> None:
    code = ("import sys, kinetic_empire.research.trial; "
            "print(sorted(m for m in ('optuna', 'distributed', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_names_still_come_from_the_package() -> None:
    from kinetic_empire.research import Optimizer, make_executor
    from kinetic_empire.research.optimizer import Optimizer as Direct

    assert Optimizer is Direct and callable(make_executor)
