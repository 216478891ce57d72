"""The soak driver's restarts keep market data flowing for the resumed engine.

Found by the short soak (seed 31): the engine's clean stop after the full-disk event took about 35 s whenever
an order of unknown outcome was still being looked up (the port's drain waits for it up to 30 s, then the
stop's 5 s settle). The driver let the replay run at 300x meanwhile, so it reached the end of the data, and
the resumed engine's preflight waited for a market-stream message that could never come ("market stream: no
message within 15 s"; 5 runs in 11). The driver now holds the replay through a clean stop. Here the engine
stands in with a clean stop made slow on purpose (``planted_run --plant slow_clean_stop``), on data short
enough that a replay left running through that stop reaches its end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.planted_run import SLOW_STOP_S
from tests.support.soak import run_soak

pytestmark = pytest.mark.integration


def test_resume_after_a_slow_clean_stop_finds_data_flowing(tmp_path: Path) -> None:
    hours, speed = 1.5, 1200.0
    report = run_soak(seed=3, hours_of_1m=hours, workdir=tmp_path, fault_rate=0.0, per_day=1.0,
                      kinds=("disk-full",), speed=speed, plant="slow_clean_stop")
    text = report.format()
    print(text)
    # the full disk comes before kline 30 of 90; the slow stop alone is worth more than the 50 klines left
    assert SLOW_STOP_S * speed / 60 > hours * 60 - 40
    assert not report.failed, text
    assert report.forced.get("disk-full") == 1 and report.restarts == 1, text
