"""Account modes at start-up (issue 12 item 5), the live engine against the local sandbox over loopback.

The sandbox reports one-way, single-asset mode; here its ``GET /fapi/v1/accountConfig`` answers with the
documented payloads instead (tests/data/binance: ``GET_fapi_v1_positionSide_dual`` says
``dualSidePosition: true``, the v2 account example carries ``multiAssetsMargin``). Without the preflight, the
engine must still refuse hedge mode before anything is placed, and trade in multi-assets mode saying what
its wallet means.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.account import AccountModeError
from kinetic_empire.sandbox import routes_account
from tests.support.live import live_config, stepped_engine

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "binance"


def answer_with(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    account = json.loads((DATA / "GET_fapi_v2_account.nautilus_crate.json").read_text())
    dual = json.loads((DATA / "GET_fapi_v1_positionSide_dual.nautilus.json").read_text())
    keys = ("feeTier", "canTrade", "canDeposit", "canWithdraw", "updateTime", "multiAssetsMargin", "tradeGroupId")
    config = {**{k: account[k] for k in keys}, **dual, **changes}  # accountConfig's fields (reference 3.4)
    monkeypatch.setattr(routes_account, "account_config", lambda ctx: config)


def test_hedge_mode_is_refused_even_without_the_preflight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer_with(monkeypatch)  # dualSidePosition: true, as documented

    async def body() -> None:
        async with stepped_engine(tmp_path / "hedge", config=live_config(preflight=False), start=False) as (
                sb, engine):
            with pytest.raises(AccountModeError, match=r"hedge mode \(dualSidePosition=true\).*one-way mode"):
                await engine.start()
            assert sb.account().exchange.all_orders("FILUSDT") == []
            assert not (tmp_path / "hedge" / "journal.sqlite").exists()  # refused before the journal opened

    asyncio.run(body())


def test_multi_assets_mode_trades_on_the_usdt_wallet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    answer_with(monkeypatch, dualSidePosition=False, multiAssetsMargin=True)

    async def body() -> None:
        with caplog.at_level(logging.WARNING):
            async with stepped_engine(tmp_path / "multi", config=live_config(preflight=False)) as (_sb, engine):
                assert engine.started and engine.translator.modes.multi_assets is True
                assert engine.translator.modes.hedge is False
        assert any("multi-assets margin mode: the engine sizes and guards on the USDT wallet only" in r.message
                   for r in caplog.records)

    asyncio.run(body())
