"""Alerts on a live run: the gateway's own (weight near the limit, venue errors, stale feed) and any other
part's (a position without its stop), each published on the bus, journaled, streamed, counted and listed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from kinetic_empire.api import AlertThresholds
from kinetic_empire.core.events import Alert
from kinetic_empire.live.cli import _AlertStatus
from tests.support.api import journal, quiet_config, served
from tests.support.live import step
from tests.support.waiting import until

pytestmark = pytest.mark.integration


def test_alerts_raised_streamed_counted_and_cleared(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "alerts"
    thresholds = AlertThresholds(weight_pct=1.0, error_rate=0.2, min_requests=3)

    async def body() -> None:
        async with served(run_dir, config=quiet_config(stale_after_s=0.6), warm_klines=1, health_every_s=0.05,
                          thresholds=thresholds) as (sb, engine, gw, client):
            def active() -> set[str]:
                return {a["kind"] for a in gw.alerts.active()}

            # nothing is stepped: the feed goes quiet and entries pause; the start-up weight passed 1 % of the limit
            await until(lambda: {"stale_feed", "weight_high"} <= active(), "stale feed and weight alerts")
            # the start-up's 4xx answers (-4046 "no need to change margin type", ...) are not venue failures
            assert "error_rate" not in active(), gw.alerts.active()
            # every venue request now gets a 429: the error rate crosses its threshold
            sb.faults.cfg.enabled, sb.faults.cfg.rate_limit_burst_rate = True, 1.0
            r = await client.get("/api/execution/ping")
            assert r.status_code == 502 and r.json()["error"].startswith("venue ping failed")
            await until(lambda: "error_rate" in active(), "the error-rate alert")
            sb.faults.cfg.enabled = False
            # an alert from another part of the engine (the protection code raises this one) is forwarded too
            now = engine.clock.now_ms()
            engine.bus.publish(Alert(kind="unprotected_position", message="FILUSDT long 10 has no stop",
                                     symbol="FILUSDT", severity="critical", ts_event=now, ts_init=now))
            listed = (await client.get("/api/alerts")).json()
            assert {"stale_feed", "weight_high", "error_rate", "unprotected_position"} <= {
                a["kind"] for a in listed["active"]}
            metrics = (await client.get("/metrics")).text
            for kind in ("stale_feed", "weight_high", "error_rate", "unprotected_position"):
                assert f'kinetic_alerts_total{{kind="{kind}"' in metrics, kind
            status = (await client.get("/api/status")).json()
            assert any(a["kind"] == "stale_feed" and a["severity"] == "critical" for a in status["alerts"])
            assert gw.alerts.lines() and any("stale_feed" in line for line in gw.alerts.lines())
            view = _AlertStatus(engine, SimpleNamespace(gateway=gw))  # type: ignore[arg-type]  # the status view of a run
            view.out = io.StringIO()
            assert any(line.startswith("ALERT critical stale_feed") for line in view.lines())
            assert "ALERT critical unprotected_position FILUSDT" in view.line()
            kinds = [m.kind for m in gw.stream.ring if m.kind == "alert"]
            assert len(kinds) >= 4
            # the feed flows again: the stale-feed alert clears (published once more, cleared)
            await step(sb, engine, 1)
            await until(lambda: "stale_feed" not in active(), "the stale feed alert cleared")
            alerts = [e for e in journal(run_dir, engine) if isinstance(e, Alert)]
            stale = [(a.cleared, a.severity) for a in alerts if a.kind == "stale_feed"]
            assert stale[:2] == [(False, "critical"), (True, "critical")]

    asyncio.run(body())
