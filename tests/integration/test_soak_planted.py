"""The soak must fail on a planted bug, and name it (issue 11: "a soak that can fail").

Each test runs the engine through ``python -m tests.support.planted_run --plant NAME`` (a test-only wrapper
that monkeypatches one product function, then calls ``kinetic_empire.cli.main``) under a short schedule
dense in the one recovery path the bug breaks. An audit that passes a planted bug is a failing test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import run_soak

pytestmark = pytest.mark.integration

CASES = [
    # plant, schedule kinds, per simulated day, extra options, violation kind the audit must name
    ("resend_new_id", ("error-executed", "timeout-executed"), 24.0, {}, "duplicate-effect"),
    ("dropped_fill", (), 0.0, {"grace_s": 10.0}, "fill-not-journaled"),
    ("no_stop_replacement", ("kill-cancel-stop",), 16.0, {"stop_bound_s": 2.0, "poll_s": 0.3}, "unprotected"),
    ("reused_client_id", ("kill",), 24.0, {}, "duplicate-client-id"),
    ("send_before_journal", ("kill",), 24.0, {"poll_s": 0.3}, "order-not-journaled"),
]


@pytest.mark.parametrize(("plant", "kinds", "per_day", "options", "expected"), CASES, ids=[c[0] for c in CASES])
def test_soak_fails_on_planted_bug(tmp_path: Path, plant: str, kinds: tuple[str, ...], per_day: float,
                                   options: dict[str, float], expected: str) -> None:
    report = run_soak(seed=11, hours_of_1m=3, workdir=tmp_path, fault_rate=0.0, per_day=per_day, kinds=kinds,
                      speed=300, plant=plant, **options)  # type: ignore[arg-type]
    text = report.format()
    print(text)
    assert not report.problems, text  # the soak itself ran as planned
    assert expected in report.kinds(), f"planted {plant}: the audit did not name {expected}\n{text}"
    assert f"] {expected}: " in text  # and the report says it, with its time and details
