"""Request weights per Binance's documentation, fee rates of every traded symbol, and the websockets version
the code needs (issue 12 item 10)."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets
import websockets.asyncio.client

from kinetic_empire.binance.account import DEFAULT_RATES, commission_rates
from kinetic_empire.binance.errors import error_for_code
from kinetic_empire.binance.venues import weight_of

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data" / "binance"


@pytest.mark.parametrize(("method", "path", "params", "weight"), [
    # reference 3.1, "GET /fapi/v1/klines, W by limit": [1,100) 1, [100,500) 2, [500,1000] 5, above 1000 10
    ("GET", "/fapi/v1/klines", {"limit": 99}, 1), ("GET", "/fapi/v1/klines", {"limit": 100}, 2),
    ("GET", "/fapi/v1/klines", {"limit": 499}, 2), ("GET", "/fapi/v1/klines", {"limit": 500}, 5),
    ("GET", "/fapi/v1/klines", {"limit": 1000}, 5), ("GET", "/fapi/v1/klines", {"limit": 1001}, 10),
    ("GET", "/fapi/v1/klines", {"limit": 1500}, 10), ("GET", "/fapi/v1/klines", {}, 5),  # default limit 500
    # reference 3.2/3.3: placements cost 0 IP weight (they count against ORDERS)
    ("POST", "/fapi/v1/order", {}, 0), ("POST", "/fapi/v1/algoOrder", {}, 0),
    # "GET /fapi/v1/openOrders, W 1 (symbol) / 40 (all)"; openAlgoOrders the same; premiumIndex 1 / 10
    ("GET", "/fapi/v1/openOrders", {"symbol": "FILUSDT"}, 1), ("GET", "/fapi/v1/openOrders", {}, 40),
    ("GET", "/fapi/v1/openAlgoOrders", {"symbol": "FILUSDT"}, 1), ("GET", "/fapi/v1/openAlgoOrders", {}, 40),
    ("GET", "/fapi/v1/premiumIndex", {"symbol": "FILUSDT"}, 1), ("GET", "/fapi/v1/premiumIndex", {}, 10),
    ("GET", "/fapi/v1/commissionRate", {"symbol": "FILUSDT"}, 20), ("GET", "/fapi/v1/accountConfig", {}, 5),
])
def test_request_weights_follow_the_documentation(method: str, path: str, params: dict[str, Any],
                                                  weight: int) -> None:
    assert weight_of(method, path, params) == weight


def test_fee_rates_are_read_for_every_traded_symbol() -> None:
    captured = json.loads((DATA / "GET_fapi_v1_commissionRate.BTCUSDT.nautilus.json").read_text())
    asked: list[str] = []

    class Venue:
        async def signed(self, method: str, path: str, params: dict[str, Any]) -> Any:
            asked.append(params["symbol"])
            if params["symbol"] == "NEARUSDT":
                return {**captured, "symbol": "NEARUSDT", "takerCommissionRate": "0.0007"}
            if params["symbol"] == "LTCUSDT":
                raise error_for_code(-1121, "Invalid symbol.", 400)
            return {**captured, "symbol": params["symbol"]}

    rates = asyncio.run(commission_rates(Venue(), ["FILUSDT", "NEARUSDT", "FILUSDT", "LTCUSDT"]))
    assert asked == ["FILUSDT", "NEARUSDT", "LTCUSDT"]
    maker, taker = Decimal(captured["makerCommissionRate"]), Decimal(captured["takerCommissionRate"])
    assert rates == {"FILUSDT": (maker, taker), "NEARUSDT": (maker, Decimal("0.0007")), "LTCUSDT": DEFAULT_RATES}


def test_pyproject_requires_the_websockets_the_code_uses() -> None:
    """The code uses the asyncio client as ``websockets.connect`` (and its InvalidStatus): the default
    implementation from websockets 14.0; 12 has no websockets.asyncio, 13's connect is the legacy client."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [spec] = [d for d in deps if re.match(r"websockets\b", d)]
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor is not None
    assert tuple(int(x) for x in floor.group(1).split(".")) >= (14, 0)
    assert websockets.connect is websockets.asyncio.client.connect  # what the installed version provides
