"""``--state`` when things go wrong: a corrupt file, a second process, an old (version 1) file, a full disk."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from kinetic_empire.sandbox import ApiKey, SandboxServer
from kinetic_empire.sandbox.state import read_image
from kinetic_empire.sandbox.statefile import encode
from tests.support.sandbox import DATA, SYM, Client, config

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
V1 = REPO / "tests" / "data" / "sandbox-state-v1.json"  # written by the version-1 sandbox (periodic JSON)
V1_KEY = ApiKey("v1fixtureKEY" + "k" * 52, "v1fixtureSECRET" + "s" * 49)


def sandbox_cmd(state: Path, keys: Path) -> list[str]:
    return [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(DATA), "--port", "0", "--json",
            "--speed", "step", "--admin", "--keys", str(keys), "--state", str(state)]


def start(cmd: list[str], **kw: Any) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.communicate(timeout=10)
    return proc, json.loads(line)


def signed(info: dict[str, Any], method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    q = urlencode({**params, "timestamp": int(time.time() * 1000)})
    sig = hmac.new(info["api_secret"].encode(), q.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{info['rest']}{path}?{q}&signature={sig}", method=method,
                                 headers={"X-MBX-APIKEY": info["api_key"]})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_corrupt_file_is_refused_in_one_line_and_never_overwritten(tmp_path: Path) -> None:
    state = tmp_path / "state"
    data = encode({"version": 2, "seq": 1, "replay": {}, "accounts": {}}) + b"0badc0de {\"seq\":2}\n"
    state.write_bytes(data)
    run = subprocess.run(sandbox_cmd(state, tmp_path / "keys.json"), capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert run.returncode == 2
    assert run.stderr.strip() == f"kinetic sandbox: {state}: line 2 is corrupt (checksum mismatch); the file was " \
                                 "left as it is"
    assert state.read_bytes() == data


def test_a_second_sandbox_on_the_same_file_is_refused(tmp_path: Path) -> None:
    cmd = sandbox_cmd(tmp_path / "state", tmp_path / "keys.json")
    first, _ = start(cmd)
    try:
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert second.returncode == 2
        assert second.stderr.strip() == f"kinetic sandbox: {tmp_path / 'state'}: in use by another sandbox " \
                                        f"(pid {first.pid}); one process per state file"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    again, _ = start(cmd)  # the OS released the killed process's lock
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=20) == 0


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    shutil.copyfile(V1, state)
    cfg = config(state_file=state, keys=[V1_KEY], symbols=[SYM])

    async def body() -> None:
        async with SandboxServer(cfg) as sb, aiohttp.ClientSession() as s:
            c = Client(sb, s)
            assert sb.market_ms() == 1690848300000
            acct = (await c.get("/fapi/v2/account")).data
            assert acct["totalWalletBalance"] == "9999.97872000"
            pos = next(p for p in acct["positions"] if p["symbol"] == SYM)
            assert (pos["positionAmt"], pos["leverage"]) == ("10.0", "7")
            assert [o["clientOrderId"] for o in (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data] == [
                "resting"]
            assert [a["clientAlgoId"] for a in (await c.get("/fapi/v1/openAlgoOrders")).data] == ["sl"]
            await sb.step(1)  # the rest of the kline dips to 4.239: the migrated stop fires
            assert (await c.get("/fapi/v1/algoOrder", {"clientAlgoId": "sl"})).data["algoStatus"] == "FINISHED"

    asyncio.run(asyncio.wait_for(body(), 30))
    assert (tmp_path / "state.json.v1").read_bytes() == V1.read_bytes()
    image = read_image(state)
    assert image is not None and image["version"] == 2 and V1_KEY.api_key not in state.read_text()


def test_a_full_disk_stops_the_sandbox_without_losing_acknowledged_work(tmp_path: Path) -> None:
    state, keys = tmp_path / "state", tmp_path / "keys.json"
    cmd = sandbox_cmd(state, keys)
    proc, _ = start(cmd)  # first run: creates the keys and the state file
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    limit = state.stat().st_size + 4000  # room for a few orders, then writes fail (EFBIG, like ENOSPC)

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc, info = start(cmd, preexec_fn=small_disk)
    acked, answers = [], []
    for n in range(40):
        status, data = signed(info, "POST", "/fapi/v1/order", {
            "symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": 10,
            "price": "4.000", "newClientOrderId": f"o{n}"})
        answers.append(status)
        if status != 200:
            break
        acked.append(data["orderId"])
    assert answers[-1] == 503 and 2 <= len(acked) < 40, answers
    assert proc.wait(timeout=20) == 1
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err
    assert f"kinetic sandbox: cannot write the state file {state}: File too large; stopped" in err
    proc, info = start(cmd)  # room again: everything acknowledged is there
    try:
        status, orders = signed(info, "GET", "/fapi/v1/openOrders", {"symbol": SYM})
        assert status == 200 and acked == [o["orderId"] for o in orders][:len(acked)]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
