"""The preflight's stream checks on a second run (issue 12 item 6), against the local sandbox over loopback.

On a re-run nothing changes: Binance answers -4046 "No need to change margin type." (tests/data/binance/
fapi_error_bodies.json, from a public issue thread) and may send no ACCOUNT_CONFIG_UPDATE for a leverage that
is already set (reference 8.3: the event reports a change). The sandbox here is told to behave that way (it
drops a config event that repeats the symbol's leverage); the user-stream check must still pass, because it
checks the connection itself, and must still fail for a key the venue refuses.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.venues import Venue
from kinetic_empire.live import doctor as doctor_module
from kinetic_empire.live.doctor import OK, Doctor
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "sandbox"
ERRORS = Path(__file__).parents[1] / "data" / "binance" / "fapi_error_bodies.json"


def only_changes(sb: SandboxServer) -> list[str]:
    """Make the sandbox send ACCOUNT_CONFIG_UPDATE only when the leverage really changes; returns what it sent."""
    users = sb.users
    send = users.send
    last: dict[str, Any] = {}
    sent: list[str] = []

    def send_changes(acct: Any, payload: dict[str, Any]) -> None:
        if payload.get("e") == "ACCOUNT_CONFIG_UPDATE":
            ac = payload.get("ac") or {}
            if last.get(ac.get("s")) == ac.get("l"):
                return
            last[ac.get("s")] = ac.get("l")
        sent.append(str(payload.get("e")))
        send(acct, payload)

    users.send = send_changes  # type: ignore[method-assign]
    return sent


def test_a_second_preflight_passes_when_the_venue_sends_nothing() -> None:
    no_change = next(e for e in json.loads(ERRORS.read_text()) if e["body"]["code"] == -4046)
    assert no_change["body"]["msg"] == "No need to change margin type."

    async def body() -> None:
        cfg = SandboxConfig(data=[DATA], speed=600, limits=RateLimitConfig(enforce=False), warmup_klines=5)
        async with SandboxServer(cfg) as sb:
            sent = only_changes(sb)
            venue = Venue("sandbox", sb.rest_url, sb.ws_url)
            async with BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret, "sandbox")) as rest:
                runs = []
                for _ in range(2):
                    checks = await Doctor(rest, venue, ["FILUSDT"], {"FILUSDT": 2}, stream_timeout_s=5).run()
                    runs.append({c.name: c for c in checks})
                assert sent.count("ACCOUNT_CONFIG_UPDATE") == 1  # the second run changed nothing, heard nothing
                for run in runs:
                    assert run["user stream"].status == OK, run["user stream"]
                    assert run["market stream"].status == OK and run["margin and leverage"].status == OK
                assert "ping answered" in runs[1]["user stream"].detail

                # a key the venue does not know still fails the check
                got = await doctor_module._user_stream_alive(venue.user_stream_url("not-a-key"), 5)
                assert isinstance(got, Exception)

    asyncio.run(body())
