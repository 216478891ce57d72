"""The price moves between a fill and the client's next request (issue 12 item 13, second half).

With ``FaultConfig.updates_after_fill`` the sandbox plays price updates right after a request's order fills,
before it reads the next request, as a fast market moves between two of a client's requests on Binance. A
protective stop placed against the entry price then meets Binance's -2021 "Order would immediately trigger"
(routes_algo), and the next market order fills at a slipped price. Without the mode neither happens: the
control run below shows the same requests succeed at the entry's price.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.sandbox import FaultConfig
from tests.support.crafted import write_klines
from tests.support.sandbox import SYM, Client, run

pytestmark = pytest.mark.integration

FLAT = ("4.000", "4.001", "3.999", "4.000")
DROP = ("3.900", "3.900", "3.880", "3.890")


def entry_then_stop(moves: int, folder: Path) -> dict[str, object]:
    seen: dict[str, object] = {}

    async def body(sb, c: Client) -> None:
        await sb.step(3)  # the last price is 4.000; the next update opens the 3.900 kline
        r = await c.order(side="BUY", type="MARKET", quantity="100", newOrderRespType="RESULT")
        assert r.status == 200 and r.data["status"] == "FILLED", r
        seen["entry"] = Decimal(r.data["avgPrice"])
        r = await c.post("/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL",
                                                "type": "STOP_MARKET", "triggerPrice": "3.950", "quantity": "100",
                                                "reduceOnly": "true"})
        seen["stop"] = (r.status, r.code, r.data.get("msg") if isinstance(r.data, dict) else None)
        r = await c.order(side="SELL", type="MARKET", quantity="100", reduceOnly="true", newOrderRespType="RESULT")
        assert r.status == 200 and r.data["status"] == "FILLED", r
        seen["exit"] = Decimal(r.data["avgPrice"])
        seen["moves"] = sb.faults.counts["move-after-fill"]

    run(body, data=[write_klines(folder, [FLAT] * 3 + [DROP] * 4)],
        faults=FaultConfig(enabled=True, updates_after_fill=moves))
    return seen


def test_the_price_moves_between_a_fill_and_the_next_request(tmp_path: Path) -> None:
    moved = entry_then_stop(1, tmp_path / "moved")
    assert moved["entry"] >= Decimal("4.000")
    assert moved["stop"] == (400, -2021, "Order would immediately trigger.")
    assert moved["exit"] <= Decimal("3.900")  # slipped: the exit fills after the move, 2.5 % below the entry
    assert moved["moves"] == 2  # after the entry's fill and after the exit's (a refused stop fills nothing)


def test_without_the_mode_the_price_waits_for_the_replay(tmp_path: Path) -> None:
    still = entry_then_stop(0, tmp_path / "still")
    assert still["stop"][0] == 200  # type: ignore[index]
    assert Decimal("3.999") <= still["exit"] <= Decimal("4.001")  # type: ignore[operator]
    assert still["moves"] == 0
