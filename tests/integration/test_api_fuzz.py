"""schemathesis against the running gateway's own /openapi.json: generated valid and invalid requests for every
operation, against a real ``kinetic run`` on the sandbox. No answer is a 5xx, every error is a JSON object
naming what was wrong, and the journal holds exactly one command per accepted write (none for a refused one)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from kinetic_empire.core.events import CancelRequest, OperatorCommand, OrderIntent
from kinetic_empire.live.journal import read_events
from tests.integration.test_api_cli import ROOT, _config

pytestmark = pytest.mark.integration
TOKEN = "fuzz-token-0123456789abcdefghij"
EXAMPLES = int(os.environ.get("KINETIC_FUZZ_EXAMPLES", "15"))
SKIP = {"/api/stream"}  # an endless event stream: tested on its own


def test_fuzz_the_openapi_document(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "KINETIC_API_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "kinetic_empire", "run", "--config", str(_config(tmp_path)),
                             "--run-id", "fuzz", "--no-status", "--duration", "600", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    accepted: Counter[str] = Counter()
    statuses: Counter[tuple[str, int]] = Counter()
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("dashboard:") or proc.poll() is not None:
                break
        found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/login", "".join(out))
        assert found, "".join(out)
        base = found.group(1)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        doc = httpx.get(f"{base}/openapi.json", headers=auth, timeout=20).json()
        schema = schemathesis.openapi.from_dict(doc)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/api/order", "/api/cancel", "/api/control", "/api/market"}
        for op in operations:
            if op.path in SKIP:
                continue
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                _fuzz(op, mode, base, auth, accepted, statuses)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    events = list(read_events(tmp_path / "runs" / "fuzz" / "journal.sqlite"))
    journaled = Counter({
        "/api/order": sum(1 for e in events if isinstance(e, OrderIntent) and e.strategy_id == "manual"),
        "/api/control": sum(1 for e in events if isinstance(e, OperatorCommand) and e.source == "operator"),
        "/api/cancel": sum(1 for e in events if isinstance(e, CancelRequest) and e.strategy_id == "operator"),
    })
    # exactly one journaled command per accepted write; every refused write left nothing
    assert journaled == Counter({k: accepted[k] for k in journaled}), (journaled, accepted, statuses)
    refused = sum(n for (path, code), n in statuses.items() if path in journaled and code >= 400)
    assert refused > 20, statuses  # the fuzzer did try plenty of bad writes


def _fuzz(op: Any, mode: Any, base: str, auth: dict[str, str], accepted: Counter[str],
          statuses: Counter[tuple[str, int]]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=auth, timeout=30)
        statuses[(op.path, response.status_code)] += 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], response.text
            assert "field" in body, response.text
        elif op.method.upper() == "POST":
            accepted[op.path] += 1

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode is schemathesis.GenerationMode.NEGATIVE, op.path
