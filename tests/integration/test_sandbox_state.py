"""``--state`` persistence across restarts, and the command line (``python -m kinetic_empire.sandbox``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from kinetic_empire.sandbox import ApiKey, SandboxServer
from kinetic_empire.sandbox.state import account_digest, read_image
from tests.support.sandbox import DATA, SYM, Client, config

pytestmark = pytest.mark.integration


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    key = ApiKey.generate()

    async def first() -> dict[str, object]:
        async with SandboxServer(config(state_file=state, keys=[key])) as sb, aiohttp.ClientSession() as s:
            c = Client(sb, s)
            await sb.step(3)
            await c.order(side="BUY", type="MARKET", quantity="10")
            await sb.step(2)
            await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100",
                          newClientOrderId="resting")
            await c.post("/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL",
                                                "type": "STOP_MARKET", "triggerPrice": "4.245", "quantity": "10",
                                                "reduceOnly": "true", "clientAlgoId": "sl"})
            await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 7})
            await sb.step_updates(1)  # mid-kline: the restart must resume inside kline 5
            return {"acct": (await c.get("/fapi/v2/account")).data, "time": sb.market_ms(),
                    "klines": (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data}

    async def second() -> dict[str, object]:
        async with SandboxServer(config(state_file=state, keys=[key])) as sb, aiohttp.ClientSession() as s:
            c = Client(sb, s)
            out: dict[str, object] = {
                "acct": (await c.get("/fapi/v2/account")).data, "time": sb.market_ms(),
                "klines": (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data,
                "open": (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data,
                "algos": (await c.get("/fapi/v1/openAlgoOrders")).data,
            }
            await sb.step(1)  # the rest of kline 5 dips to 4.239: the restored stop fires
            out["after"] = (await c.get("/fapi/v3/positionRisk")).data
            out["algo"] = (await c.get("/fapi/v1/algoOrder", {"clientAlgoId": "sl"})).data
            out["next_id"] = (await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10",
                                            price="4.100")).data["orderId"]
            return out

    before = asyncio.run(first())
    image = read_image(state)
    assert image is not None and image["version"] == 2
    after = asyncio.run(second())
    assert after["time"] == before["time"] and after["klines"] == before["klines"]
    a, b = before["acct"], after["acct"]
    assert a["totalWalletBalance"] == b["totalWalletBalance"]  # type: ignore[index]
    pos = next(p for p in b["positions"] if p["symbol"] == SYM)  # type: ignore[index]
    assert (pos["positionAmt"], pos["leverage"]) == ("10.0", "7")
    assert [o["clientOrderId"] for o in after["open"]] == ["resting"]  # type: ignore[union-attr]
    assert [x["clientAlgoId"] for x in after["algos"]] == ["sl"]  # type: ignore[union-attr]
    assert after["after"] == [] or after["after"][0]["positionAmt"] == "0.0"  # type: ignore[index]
    assert after["algo"]["algoStatus"] == "FINISHED"  # type: ignore[index]
    assert after["next_id"] > after["open"][0]["orderId"]  # type: ignore[index]


def test_command_line(tmp_path: Path) -> None:
    keys, state = tmp_path / "keys.json", tmp_path / "state.json"
    cmd = [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(DATA), "--port", "0", "--json",
           "--speed", "step", "--admin", "--keys", str(keys), "--state", str(state), "--balance", "500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["rest"].startswith("http://127.0.0.1:") and info["symbols"] == ["FILUSDT", "NEARUSDT"]
        saved = json.loads(keys.read_text())
        assert (saved["api_key"], saved["api_secret"]) == (info["api_key"], info["api_secret"])
        assert oct(keys.stat().st_mode & 0o777) == "0o600"
        with urllib.request.urlopen(info["rest"] + "/fapi/v1/ping", timeout=5) as r:
            assert json.loads(r.read()) == {}
        req = urllib.request.Request(info["rest"] + "/sandbox-admin/step?klines=2", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read())["marketTime"] == 1_690_848_119_999
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    image = read_image(state)
    assert image is not None and image["accounts"][account_digest(info["api_key"])]["wallet"] == "500"
    assert info["api_key"] not in state.read_text()  # the file names accounts by a digest, never by key
    bad = subprocess.run([sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(tmp_path / "none.csv")],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "kinetic sandbox:" in bad.stderr
