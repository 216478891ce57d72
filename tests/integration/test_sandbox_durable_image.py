"""``--state`` write-through, checked from inside: after every request, replay phase and countdown cancel
the file holds exactly the in-memory state, and a sandbox restored from it (as after a SIGKILL, with no
final save) has the same orders, trades, income, wallet, positions and replay position, with ids that
continue above every id handed out before."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.exchange.config import ExchangeConfig
from kinetic_empire.sandbox import ApiKey, SandboxServer
from kinetic_empire.sandbox import durable as durable_module
from kinetic_empire.sandbox.state import read_image
from kinetic_empire.sandbox.statefile import parse
from tests.support.sandbox import SYM, WALL0, Client, config

pytestmark = pytest.mark.integration


def comparable(image: dict[str, Any], ids: bool = True) -> dict[str, Any]:
    """An image without what the file does not keep current on purpose: the books' last price (restored
    from the replay) and, across a restart, the id counters (a restart starts at the reserved ceiling)."""
    out = {"replay": image["replay"], "accounts": {}}
    for digest, acct in image["accounts"].items():
        acct = {**acct, "books": {s: {k: v for k, v in b.items() if k != "last"} for s, b in acct["books"].items()}}
        if not ids:
            acct.pop("ids")
            acct.pop("reserved")
        out["accounts"][digest] = acct
    return out


async def one_step(rng: random.Random, sb: SandboxServer, c: Client, clock: ManualClock) -> None:
    """One seeded random action: an order of some kind, a cancel, a leverage change, a countdown, a replay step."""
    price = Decimal(str(sb.market.series[SYM].last or 4.25))
    tick = Decimal("0.001")
    side = rng.choice(["BUY", "SELL"])
    qty = str(rng.randint(2, 25))
    kind = rng.randrange(15)
    if kind == 0:
        await c.order(side=side, type="MARKET", quantity=qty)
    elif kind in (1, 2):  # resting, or marketable on arrival
        off = rng.randint(-4, 4) * tick
        await c.order(side=side, type="LIMIT", timeInForce=rng.choice(["GTC", "IOC"]), quantity=qty,
                      price=str(price + off))
    elif kind in (3, 4):  # a STOP that triggers into a resting limit, or a market stop / take-profit
        otype = rng.choice(["STOP", "STOP_MARKET", "TAKE_PROFIT_MARKET"])
        up = (side == "BUY") == (otype != "TAKE_PROFIT_MARKET")
        trigger = price + (1 if up else -1) * rng.randint(1, 3) * tick
        params: dict[str, Any] = {"algoType": "CONDITIONAL", "symbol": SYM, "side": side, "type": otype,
                                  "triggerPrice": str(trigger), "quantity": qty}
        if otype == "STOP":
            params["price"] = str(trigger + (5 if side == "SELL" else -5) * tick)  # rests after the trigger
        await c.post("/fapi/v1/algoOrder", params)
    elif kind == 5:
        orders = (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data
        if orders:
            await c.delete("/fapi/v1/order", {"symbol": SYM, "orderId": rng.choice(orders)["orderId"]})
    elif kind == 6:
        algos = (await c.get("/fapi/v1/openAlgoOrders")).data
        if algos:
            await c.delete("/fapi/v1/algoOrder", {"algoId": rng.choice(algos)["algoId"]})
    elif kind == 7:
        await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": rng.randint(2, 20)})
    elif kind == 9:  # modify a resting limit in place (PUT /fapi/v1/order): no fill, no new order, still persisted
        orders = [o for o in (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data if o["type"] == "LIMIT"]
        if orders:
            o = rng.choice(orders)
            await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"], "side": o["side"],
                                                   "quantity": str(rng.randint(2, 25)),
                                                   "price": str(Decimal(o["price"]) + rng.randint(-2, 2) * tick)})
    elif kind == 8:  # countdownCancelAll that fires (the cancel happens outside any request) or is disarmed
        await c.post("/fapi/v1/countdownCancelAll", {"symbol": SYM, "countdownTime": rng.choice([0, 1000])})
        await clock.advance(1.5)
    else:
        await sb.step_updates(rng.randint(1, 6))
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.mark.parametrize(("seed", "compact"), [(1, False), (2, True)])
def test_the_file_always_holds_the_state_and_restores_it(tmp_path: Path, seed: int, compact: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if compact:  # compact whenever the log outgrows twice the snapshot: many compactions in one run
        monkeypatch.setattr(durable_module, "COMPACT_MIN_BYTES", 0)
    state, key = tmp_path / "state", ApiKey.generate()
    clock = ManualClock(WALL0)
    cfg: dict[str, Any] = {"state_file": state, "keys": [key], "warmup_klines": 5,
                           "exchange": ExchangeConfig(max_fill_qty={SYM: Decimal(7)})}
    rng = random.Random(seed)

    async def first() -> dict[str, Any]:
        sb = await SandboxServer(config(**cfg), clock=clock).start()
        async with aiohttp.ClientSession() as s:
            c = Client(sb, s, now_ms=clock.now_ms)
            await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 10})
            for n in range(200):
                await one_step(rng, sb, c, clock)
                assert sb.durable is not None
                on_disk, in_memory = read_image(state), sb.durable.image()
                assert on_disk is not None
                assert comparable(on_disk) == comparable(in_memory), f"file differs from memory after step {n}"
            durable = sb.durable
            assert durable is not None
            image = durable.image()
            assert image["accounts"][next(iter(image["accounts"]))]["trades"], "the script made no trades"
            records = len(parse(state, state.read_bytes()).records)
            assert (records < image["seq"] - 10) if compact else (records == image["seq"])
        # a crash: the file is released without a final commit, snapshot or fsync
        durable.file.close()
        sb.durable = None
        sb._state_file = None
        await sb.stop()
        return image

    async def second(before: dict[str, Any]) -> None:
        async with SandboxServer(config(**cfg), clock=clock) as sb, aiohttp.ClientSession() as s:
            assert sb.durable is not None
            after = sb.durable.image()
            assert comparable(after, ids=False) == comparable(before, ids=False)
            (digest, acct), = before["accounts"].items()
            assert after["accounts"][digest]["ids"] == acct["reserved"]  # ids resume above every one handed out
            c = Client(sb, s, now_ms=clock.now_ms)
            placed = (await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="5", price="4.000")).data
            assert placed["orderId"] >= acct["reserved"]["order"]

    asyncio.run(asyncio.wait_for(second(asyncio.run(asyncio.wait_for(first(), 120))), 60))
