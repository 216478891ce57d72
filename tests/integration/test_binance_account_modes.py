"""Account modes (issue 12 items 5 and 15), the sandbox and the live engine over loopback.

The sandbox's modes are set as on Binance (reference 3.4; error codes from Binance's USD-M error-code page):
``POST /fapi/v1/positionSide/dual`` (-4059 unchanged, -4067 open orders, -4068 positions),
``/fapi/v1/multiAssetsMargin`` (-4171 unchanged, -4170 open orders; a real change sends ACCOUNT_CONFIG_UPDATE
``ai.j``), ``/fapi/v1/feeBurn``, and ``/fapi/v1/marginType`` (-4046 unchanged). Some tests answer
``GET /fapi/v1/accountConfig`` with the documented payloads instead (tests/data/binance). The engine must
refuse hedge mode before anything is placed (with or without the preflight), raise a critical alert when the
account enters hedge mode while it runs, and trade in multi-assets mode saying what its wallet means.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kinetic_empire.binance.account import AccountModeError
from kinetic_empire.core.enums import IntentAction
from kinetic_empire.core.events import Alert, OrderIntent, OrderRejected
from kinetic_empire.sandbox import ApiKey, SandboxServer, routes_account
from kinetic_empire.sandbox.state import account_digest, read_image
from tests.support.live import live_config, step, stepped_engine
from tests.support.sandbox import SYM, Client, collect, config, recv_json, run
from tests.support.waiting import until

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


def test_account_modes_are_settable_as_on_binance() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        key = (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as ws:
            # position mode: unchanged -> -4059; a real change needs no orders and no positions
            assert (await c.get("/fapi/v1/positionSide/dual")).data == {"dualSidePosition": False}
            r = await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})
            assert (r.status, r.code, r.data["msg"]) == (400, -4059, "No need to change position side.")
            r = await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
            assert r.status == 200
            assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})).code == -4067
            assert (await c.post("/fapi/v1/multiAssetsMargin", {"multiAssetsMargin": "true"})).code == -4170
            await c.delete("/fapi/v1/allOpenOrders", {"symbol": SYM})
            assert (await c.order(side="BUY", type="MARKET", quantity="10")).status == 200
            assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})).code == -4068
            assert (await c.order(side="SELL", type="MARKET", quantity="10", reduceOnly="true")).status == 200
            r = await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
            assert r.data == {"code": 200, "msg": "success"}
            assert (await c.get("/fapi/v1/positionSide/dual")).data == {"dualSidePosition": True}
            assert (await c.get("/fapi/v1/accountConfig")).data["dualSidePosition"] is True
            rows = (await c.get("/fapi/v2/positionRisk", {"symbol": SYM})).data
            assert [(r["positionSide"], r["positionAmt"]) for r in rows] == [("LONG", "0.0"), ("SHORT", "0.0")]
            # hedge mode: an order without positionSide is refused as Binance does; legs are not modelled
            r = await c.order(side="BUY", type="MARKET", quantity="10")
            assert (r.code, r.data["msg"]) == (-4061, "Order's position side does not match user's setting.")
            r = await c.order(side="BUY", type="MARKET", quantity="10", positionSide="LONG")
            assert r.code == -1130 and "hedge-mode" in r.data["msg"]
            assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})).code == -4059
            assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})).status == 200
            assert (await c.post("/fapi/v1/positionSide/dual", {})).code == -1102

            # multi-assets mode: a real change is announced once, an unchanged one is -4171 and silent
            assert (await c.get("/fapi/v1/multiAssetsMargin")).data == {"multiAssetsMargin": False}
            r = await c.post("/fapi/v1/multiAssetsMargin", {"multiAssetsMargin": "true"})
            assert r.data == {"code": 200, "msg": "success"}
            event = await collect(ws, lambda m: m["e"] == "ACCOUNT_CONFIG_UPDATE")
            assert event["ai"] == {"j": True} and isinstance(event["E"], int)
            r = await c.post("/fapi/v1/multiAssetsMargin", {"multiAssetsMargin": "true"})
            assert (r.code, r.data["msg"]) == (
                -4171, "Adjusted asset mode is currently set and does not need to be adjusted repeatedly.")
            assert (await c.get("/fapi/v1/accountConfig")).data["multiAssetsMargin"] is True
            assert (await c.get("/fapi/v2/account")).data["multiAssetsMargin"] is True

            # BNB fee burn: a switch read back by GET and the v2 account; fees stay USDT (no BNB here)
            assert (await c.get("/fapi/v1/feeBurn")).data == {"feeBurn": False}
            assert (await c.post("/fapi/v1/feeBurn", {"feeBurn": "true"})).data == {"code": 200, "msg": "success"}
            assert (await c.get("/fapi/v1/feeBurn")).data == {"feeBurn": True}
            assert (await c.get("/fapi/v2/account")).data["feeBurn"] is True
            assert (await c.post("/fapi/v1/feeBurn", {"feeBurn": "maybe"})).code == -1130

            # margin type and leverage: unchanged means -4046 and no event
            r = await c.post("/fapi/v1/marginType", {"symbol": SYM, "marginType": "CROSSED"})
            assert (r.code, r.data["msg"]) == (-4046, "No need to change margin type.")
            lev = (await c.get("/fapi/v2/positionRisk", {"symbol": SYM})).data[0]["leverage"]
            assert (await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": lev})).status == 200
            with pytest.raises(TimeoutError):  # nothing changed: nothing announced
                while True:
                    msg = await recv_json(ws, 0.3)
                    assert msg["e"] != "ACCOUNT_CONFIG_UPDATE", msg

    run(body)


def test_hedge_mode_set_on_the_sandbox_is_refused_at_start(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "hedge", config=live_config(preflight=False), start=False) as (
                sb, engine):
            sb.account().hedge = True  # as POST /fapi/v1/positionSide/dual would (the account is flat)
            with pytest.raises(AccountModeError, match=r"hedge mode \(dualSidePosition=true\)"):
                await engine.start()
            assert sb.account().exchange.all_orders("FILUSDT") == []

    asyncio.run(body())


def test_hedge_mode_entered_while_running_raises_a_critical_alert(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "running", config=live_config(preflight=False)) as (sb, engine):
            alerts: list[Alert] = []
            engine.bus.subscribe(Alert, alerts.append)
            r = await engine.rest.signed("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
            assert r == {"code": 200, "msg": "success"}
            await engine.reconciler.run("test: after a mode change")
            hedge = [a for a in alerts if a.kind == "account_mode"]
            assert [a.severity for a in hedge] == ["critical"] and "hedge mode" in hedge[0].message
            assert engine.translator.modes.hedge is True
            await engine.reconciler.run("test: again")
            assert len([a for a in alerts if a.kind == "account_mode"]) == 1  # said once, not on every pass

            # an order through the risk gate now: refused by the venue with -4061, reported once, never resent
            rejected: list[OrderRejected] = []
            engine.bus.subscribe(OrderRejected, rejected.append)
            await step(sb, engine, 1)
            now = engine.clock.now_ms()
            engine.bus.publish(OrderIntent(
                intent_id="after-hedge", strategy_id="manual", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                quantity=Decimal("10"), reference_price=engine.portfolio.last_price("FILUSDT"),
                ts_event=now, ts_init=now))
            await until(lambda: any(r.client_order_id.startswith("after-hedge") for r in rejected),
                        "the order's rejection")
            await engine.settle(0.05)
            ours = [r for r in rejected if r.client_order_id.startswith("after-hedge")]
            assert len(ours) == 1 and ours[0].code == -4061
            assert all(r.code == -4061 for r in rejected)  # a strategy's orders meet the same answer
            assert sb.account().exchange.all_orders("FILUSDT") == []
            assert len([a for a in alerts if a.kind == "account_mode"]) == 1

    asyncio.run(body())


def test_account_modes_survive_a_restart_with_state(tmp_path: Path) -> None:
    state, key = tmp_path / "sb.state", ApiKey.generate()

    async def session(switch: bool) -> tuple[object, object, object]:
        async with SandboxServer(config(state_file=state, keys=[key])) as sb, aiohttp.ClientSession() as http:
            c = Client(sb, http)
            if switch:
                await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
                await c.post("/fapi/v1/multiAssetsMargin", {"multiAssetsMargin": "true"})
                await c.post("/fapi/v1/feeBurn", {"feeBurn": "true"})
            cfg = (await c.get("/fapi/v1/accountConfig")).data
            return cfg["dualSidePosition"], cfg["multiAssetsMargin"], (await c.get("/fapi/v1/feeBurn")).data["feeBurn"]

    assert asyncio.run(session(True)) == (True, True, True)
    assert asyncio.run(session(False)) == (True, True, True)
    image = read_image(state)
    assert image is not None and image["accounts"][account_digest(key.api_key)]["modes"] == [True, True, True]
