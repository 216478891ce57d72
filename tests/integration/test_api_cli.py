"""``kinetic run`` serves the operator API as a user starts it: a real process on the local sandbox, its
dashboard link printed once, the token file private, the token in no log, journal or report, the default
port falling back when taken, Ctrl-C still stopping the run, and a non-loopback host refused."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from kinetic_empire.cli import main
from kinetic_empire.core.events import OrderIntent
from kinetic_empire.live.journal import read_events
from tests.support.api import sse_messages
from tests.support.live import DATA, RISK, STRATEGIES
from tests.support.waiting import until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump({
        "live": {"window": 120, "runs_dir": str(tmp_path / "runs"), "stream_check_timeout_s": 10, "preflight": False},
        "sandbox": {"data": str(DATA), "start": "2023-08-01T05:00:00", "speed": 300},
        "strategies": STRATEGIES,
        "risk": RISK,
    }))
    return path


def _hold_8080() -> socket.socket | None:
    """Take 127.0.0.1:8080 if it is free (if someone else has it, the fallback is exercised all the same)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 8080))
        s.listen(1)
        return s
    except OSError:
        s.close()
        return None


def test_run_serves_the_api_and_keeps_the_token_private(tmp_path: Path) -> None:
    held = _hold_8080()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("KINETIC_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "kinetic_empire", "run", "--config", str(_config(tmp_path)),
                             "--run-id", "api1", "--no-status", "--duration", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    out: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("dashboard:") or proc.poll() is not None:
                break
        text = "".join(out)
        found = re.search(r"dashboard: (http://127\.0\.0\.1:(\d+))/login\?token=(\S+)", text)
        assert found, text
        base, port, token = found.group(1), int(found.group(2)), found.group(3)
        assert port != 8080  # the default port was taken: an ephemeral one instead
        run_dir = tmp_path / "runs" / "api1"
        token_file = run_dir / "api_token"
        assert token_file.read_text().strip() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

        async def talk() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=20) as anon:
                assert (await anon.get("/api/health")).json()["run_id"] == "api1"
                assert (await anon.get("/api/account")).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=auth, timeout=20) as client:
                assert (await client.get("/api/account")).status_code == 200
                chunks: list[str] = []

                async def read() -> None:
                    async with client.stream("GET", "/api/stream") as r:
                        async for chunk in r.aiter_text():
                            chunks.append(chunk)

                reader = asyncio.ensure_future(read())
                await until(lambda: "event: kline" in "".join(chunks), "klines on the stream")
                reader.cancel()
                msgs = sse_messages("".join(chunks).rsplit("\n\n", 1)[0] + "\n\n")
                assert msgs[0]["event"] == "snapshot"
                r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "3",
                                                          "client_order_id": "cli-manual"})
                assert r.status_code in (200, 202) and r.json()["client_order_id"] == "cli-manual-e", r.text
                metrics = (await client.get("/metrics")).text
                assert "kinetic_rest_request_duration_seconds_count" in metrics

        asyncio.run(talk())
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the run's own handler, not uvicorn's, stops it cleanly
        rest, _ = proc.communicate(timeout=120)
        out.append(rest)
        assert proc.returncode == 0, "".join(out)
        assert "stopping (stopped by the operator)" in rest and "report:" in rest
        # the token appears once on the terminal, and nowhere the run wrote (but its own 0600 file)
        assert "".join(out).count(token) == 1
        for path in run_dir.rglob("*"):
            if path.is_file() and path != token_file:
                assert token.encode() not in path.read_bytes(), path
        intents = [e for e in read_events(run_dir / "journal.sqlite") if isinstance(e, OrderIntent)]
        assert any(i.intent_id == "cli-manual" and i.strategy_id == "manual" for i in intents)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if held is not None:
            held.close()


def test_non_loopback_host_needs_a_chosen_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KINETIC_API_TOKEN", raising=False)
    rc = main(["run", "--config", str(_config(tmp_path)), "--api-host", "0.0.0.0", "--duration", "1", "--no-status"])
    err = capsys.readouterr().err
    assert rc == 2 and "--api-host 0.0.0.0" in err and "KINETIC_API_TOKEN" in err
    assert not (tmp_path / "runs").exists()  # refused before any run folder was made
    rc = main(["run", "--config", str(_config(tmp_path)), "--api-port", "70000", "--duration", "1", "--no-status"])
    assert rc == 2 and "--api-port" in capsys.readouterr().err
