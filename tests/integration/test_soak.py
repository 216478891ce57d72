"""Fault-injection soak (issues 7 and 11): the engine as a subprocess against a persistent sandbox process,
under a seeded schedule that forces every recovery path (kills and resumes, a stop cancelled while the engine
is down, a second engine on the run, a full disk, 5xx and timeouts with and without execution, 429s, dropped
and stalled streams, expired listenKeys, a slow venue), with the journal and the venue compared about once a
second while it runs and once more at the end. Every invariant must hold throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import run_soak

pytestmark = pytest.mark.integration


def check(report_text: str, failed: bool) -> None:
    print(report_text)
    assert not failed, report_text


@pytest.mark.soak
def test_soak_24h_two_symbols_every_recovery_path(tmp_path: Path) -> None:
    report = run_soak(seed=7, hours_of_1m=24, workdir=tmp_path, per_day=4.0, speed=300)
    check(report.format(), report.failed)
    assert report.klines >= 1440 and report.fills > 0 and report.kills >= 4
    assert report.polls > 100


def test_soak_short(tmp_path: Path) -> None:
    """The CI-sized soak (default suite, about 100 s): 5 h of 1m klines, every forced fault kind once, the
    background faults at the long soak's rate. Seed 31 has the second engine (kline 33) and the plain kill (75)
    before the events that wait for a position (kill-cancel-stop 84, stop-through 95; each waits at most 40
    klines here), and the full disk (191) late enough that their wait cannot push it into the last hour, where
    restarts are skipped (seed 5's plain kill was skipped that way in CI; its only other kill needs a protected
    position to come along, and once none came: 0 kills). The driver acts at each
    event's kline whatever the load (the sandbox pauses itself there)."""
    report = run_soak(seed=31, hours_of_1m=5, workdir=tmp_path, per_day=6.0, speed=300, event_wait_klines=40)
    check(report.format(), report.failed)
    assert report.kills >= 1 and report.restarts >= 2 and report.fills > 0 and report.polls > 10
    assert report.forced.get("second-engine") == 1 and report.forced.get("disk-full") == 1
    if report.forced.get("kill-cancel-stop"):  # it waits up to 120 klines for a protected position
        assert report.reconcile_actions.get("protect", 0) >= 1


def test_resume_does_not_record_journaled_fills_twice() -> None:
    """Found by the soak: a partly filled order open at the kill had its journaled fills recorded again by
    the resume's userTrades snapshot (the journal's trade ids were read but not given to the translator)."""
    from decimal import Decimal

    from kinetic_empire.binance.translate import UserTranslator
    from kinetic_empire.core.enums import OrderType, Side
    from kinetic_empire.core.events import OrderFilled, OrderRequest

    out: list[object] = []
    tr = UserTranslator(out.append, lambda: 0, lambda _s: 2)
    req = OrderRequest(client_order_id="c-1", intent_id="i-1", strategy_id="s", symbol="NEARUSDT", side=Side.SELL,
                       order_type=OrderType.MARKET, quantity=Decimal(1800), reduce_only=True, ts_event=0, ts_init=0)
    tr.expect(req)
    tr.known_fills({("NEARUSDT", 127)}, {"c-1": Decimal(900)})
    trades = [{"symbol": "NEARUSDT", "id": i, "orderId": 5, "side": "SELL", "qty": "900", "price": "1.37",
               "commission": "0", "realizedPnl": "0", "maker": False, "time": 1} for i in (127, 128)]
    assert tr.trades_snapshot(tr.orders["c-1"], trades, Decimal(1800)) == 1
    fills = [e for e in out if isinstance(e, OrderFilled)]
    assert [f.trade_id for f in fills] == [128] and tr.orders["c-1"].filled == 1800 and tr.orders["c-1"].terminal
