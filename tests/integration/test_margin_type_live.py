"""The live adapter sets each symbol's margin type and leverage from config over signed REST, against the local
sandbox: without the doctor (``live.preflight: false``) too, and an unchanged type (-4046) is no error."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from kinetic_empire.binance.errors import NoChangeError
from kinetic_empire.core.enums import MarginType
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.venue_setup import set_symbol
from tests.support.live import DATA, RISK, START, STRATEGIES, K, stepped_engine

pytestmark = pytest.mark.integration

FIL, NEAR = "FILUSDT", "NEARUSDT"


@pytest.mark.parametrize("preflight", [True, False])
def test_start_up_sets_each_symbols_margin_type_and_leverage(
    tmp_path: Path, preflight: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = LiveConfig.from_mapping({
        "live": {"window": 120, "preflight": preflight, "margin_type": "ISOLATED"},
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": STRATEGIES,
        "risk": {**RISK, "leverage": {NEAR: 4}, "margin_type": {FIL: "CROSSED"}},
    })

    async def body() -> None:
        async with stepped_engine(tmp_path / "runs" / "r", config=cfg) as (sb, engine):
            ex = sb.account().exchange
            assert (ex.margin_type(FIL), ex.margin_type(NEAR)) == (MarginType.CROSSED, MarginType.ISOLATED)
            assert (ex.position(FIL)[2], ex.position(NEAR)[2]) == (2, 4)
            with pytest.raises(NoChangeError):  # the venue answers -4046 to an unchanged type...
                await engine.rest.signed("POST", "/fapi/v1/marginType", {"symbol": NEAR, "marginType": "ISOLATED"})
            with caplog.at_level(logging.WARNING):  # ...which set_symbol takes as done, silently
                await set_symbol(engine.rest, NEAR, MarginType.ISOLATED, 5)
            assert ex.position(NEAR)[2] == 5 and ex.margin_type(NEAR) is MarginType.ISOLATED
            assert not [r for r in caplog.records if "margin type" in r.getMessage()]

    asyncio.run(body())
