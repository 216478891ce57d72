"""A venue that keeps another margin type or leverage than the config's, over real sockets to the local sandbox.

A position opened under CROSSED makes Binance refuse ISOLATED (-4048); a position too big for the configured
leverage makes it refuse the leverage (-2027). Start-up reads both settings back: by default it refuses to
start (the doctor's check fails, or the no-preflight start says why); with ``live.settings_mismatch: adopt``
it starts, raises an alert per mismatch, and the risk gate trades under the venue's settings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import MarginType
from kinetic_empire.core.errors import KineticError
from kinetic_empire.core.events import Alert
from kinetic_empire.live.app import LiveEngine, PreflightError
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events
from kinetic_empire.live.venue_setup import SymbolSettings, venue_settings
from kinetic_empire.sandbox import SandboxServer, routes_account
from tests.support.live import DATA, RISK, START, STRATEGIES, K, stepped_engine

pytestmark = pytest.mark.integration

FIL, NEAR = "FILUSDT", "NEARUSDT"


def config(*, preflight: bool, mismatch: str | None = None, leverage: int = 2) -> LiveConfig:
    live: dict[str, Any] = {"window": 120, "preflight": preflight}
    if mismatch:
        live["settings_mismatch"] = mismatch
    return LiveConfig.from_mapping({
        "live": live,
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K,
                    "initial_balance": 100_000},
        "strategies": STRATEGIES,
        "risk": {**RISK, "margin_type": {FIL: "ISOLATED"}, "leverage": {FIL: leverage}},
    })


async def open_fil(sb: SandboxServer, engine: LiveEngine, quantity: str) -> None:
    """Someone else's FILUSDT short on the account, opened under the venue's default (CROSSED, 20x... as set)."""
    await engine.rest.start()
    await engine.rest.signed("POST", "/fapi/v1/leverage", {"symbol": FIL, "leverage": 2})
    await engine.rest.signed("POST", "/fapi/v1/order", {"symbol": FIL, "side": "SELL", "type": "MARKET",
                                                        "quantity": quantity, "newClientOrderId": "manual-1"})
    await sb.step_updates(2)
    ex = sb.account().exchange
    assert ex.position(FIL)[0] < 0 and ex.margin_type(FIL) is MarginType.CROSSED


@pytest.mark.parametrize("preflight", [True, False])
def test_a_position_under_cross_refuses_an_isolated_start(tmp_path: Path, preflight: bool) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "r", config=config(preflight=preflight), start=False) as (sb, engine):
            await open_fil(sb, engine, "30")
            wanted = "FILUSDT margin type: configured ISOLATED, the venue has CROSSED (the change was refused: -4048"
            if preflight:
                with pytest.raises(PreflightError) as err:
                    await engine.start()
                (check,) = [c for c in err.value.checks if c.name == "margin and leverage"]
                assert check.failed and wanted in check.detail, check
                assert "close FILUSDT's position and open orders" in check.hint
                assert "risk.margin_type.FILUSDT: CROSSED" in check.hint
            else:
                with pytest.raises(KineticError, match="not starting") as err2:
                    await engine.start()
                assert wanted in str(err2.value) and "risk.margin_type.FILUSDT: CROSSED" in str(err2.value)
            assert not engine.started
            assert not (tmp_path / "r" / "journal.sqlite").exists()  # refused before the journal opened
            assert sb.account().exchange.margin_type(FIL) is MarginType.CROSSED

    asyncio.run(body())


@pytest.mark.parametrize("preflight", [True, False])
def test_adopt_trades_under_the_venues_margin_type_with_an_alert(tmp_path: Path, preflight: bool) -> None:
    async def body() -> None:
        cfg = config(preflight=preflight, mismatch="adopt")
        async with stepped_engine(tmp_path / "r", config=cfg, start=False) as (sb, engine):
            await open_fil(sb, engine, "30")
            await engine.start()
            assert engine.started
            if preflight:
                (check,) = [c for c in engine.checks if c.name == "margin and leverage"]
                assert check.status == "warn" and "configured ISOLATED, the venue has CROSSED" in check.detail
            # the gate's liquidation guard follows the venue: cross for FILUSDT, the config's isolated elsewhere
            assert engine.risk.config.margin_type_for(FIL) is MarginType.CROSSED
            assert engine.risk.config.margin_type_for(NEAR) is MarginType.CROSSED  # the run's default
            active = engine.alerts.active.get(("margin_type_mismatch", FIL))
            assert active is not None and active.severity == "warning", engine.alerts.active
            assert "configured ISOLATED, the venue has CROSSED" in active.message
            assert "risk gate uses the venue's setting" in active.message
            assert [k for k in engine.alerts.active if k[0].endswith("_mismatch")] == [("margin_type_mismatch", FIL)]
        alerts = [e for e in read_events(tmp_path / "r" / "journal.sqlite") if isinstance(e, Alert)]
        assert [(a.kind, a.symbol) for a in alerts if a.kind.endswith("_mismatch")] == [("margin_type_mismatch", FIL)]

    asyncio.run(body())


def test_a_refused_leverage_is_read_back_and_adopted(tmp_path: Path) -> None:
    """A short of ~60k USDT held at 2x: Binance refuses 75x (its cap there is 50k, -2027)."""
    async def body() -> None:
        cfg = config(preflight=False, mismatch="adopt", leverage=75)
        async with stepped_engine(tmp_path / "r", config=cfg, start=False) as (sb, engine):
            await open_fil(sb, engine, "15000")
            await engine.start()
            assert sb.account().exchange.position(FIL)[2] == 2
            assert engine.risk.leverage_for(FIL) == 2 and engine.portfolio.leverage(FIL) == 2
            active = engine.alerts.active.get(("leverage_mismatch", FIL))
            assert active is not None and "configured 75x, the venue has 2x" in active.message
            assert "-2027" in active.message, active.message

    asyncio.run(body())


def test_a_symbol_positionrisk_leaves_out_is_read_from_symbolconfig(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = routes_account.position_risk
    monkeypatch.setattr(routes_account, "position_risk",
                        lambda ctx, v2: [r for r in real(ctx, v2) if r["symbol"] != FIL])

    async def body() -> None:
        cfg = config(preflight=False, mismatch="adopt")
        async with stepped_engine(tmp_path / "r", config=cfg, start=False) as (sb, engine):
            await open_fil(sb, engine, "30")
            rows = await engine.rest.signed("GET", "/fapi/v2/positionRisk")
            assert FIL not in {r["symbol"] for r in rows} and NEAR in {r["symbol"] for r in rows}
            assert await venue_settings(engine.rest, [FIL, NEAR]) == {
                FIL: SymbolSettings(MarginType.CROSSED, 2), NEAR: SymbolSettings(MarginType.CROSSED, 20)}
            await engine.start()
            assert engine.risk.config.margin_type_for(FIL) is MarginType.CROSSED
            assert ("margin_type_mismatch", FIL) in engine.alerts.active

    asyncio.run(body())
