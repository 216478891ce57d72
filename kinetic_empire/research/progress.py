"""The study's progress bar: trials done, trials per second and the best value so far (tqdm, stderr)."""

from __future__ import annotations

import sys
from typing import Any

from .objectives import Objective
from .trial import TrialOutcome


class StudyProgress:
    """tqdm on a terminal (or when forced), silent otherwise; also counts what the summary reports."""

    def __init__(self, objectives: tuple[Objective, ...], *, disabled: bool = False, force: bool = False) -> None:
        self._objectives = objectives
        self._enabled = force or (not disabled and sys.stderr.isatty())
        self._bar: Any = None
        self._best: float | None = None
        self.finished = 0
        self.pruned = 0
        self.failed = 0
        self.replay_s = 0.0
        self.trial_s = 0.0

    def begin(self, label: str, total: int, done: int) -> None:
        self.close()
        self._best = None
        if self._enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="trial", desc=label, dynamic_ncols=True,
                             file=sys.stderr)  # fmt: skip

    def update(self, out: TrialOutcome, _study: Any = None) -> None:
        self.finished += 1
        self.pruned += out.pruned
        self.failed += out.error is not None
        self.replay_s += out.replay_s
        self.trial_s += out.total_s
        if len(self._objectives) == 1 and out.values and out.values[0] is not None and out.feasible:
            value = out.values[0]
            better = self._best is None or (
                value > self._best if self._objectives[0].direction == "maximize" else value < self._best
            )
            if better:
                self._best = value
        if self._bar is not None:
            if self._best is not None:
                self._bar.set_postfix_str(f"best {self._objectives[0].name} {self._best:.4g}", refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
