"""Fault-injection soak (issue 7): the engine as a subprocess against a persistent sandbox process with
seeded faults, SIGKILLed and resumed; the journal must then agree with the venue on every order, fill,
position and balance, and every position that asked for a stop must have one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import run_soak

pytestmark = pytest.mark.integration


def check(report_text: str, problems: list[str]) -> None:
    print(report_text)
    assert not problems, report_text


@pytest.mark.soak
def test_soak_24h_two_symbols_six_kills(tmp_path: Path) -> None:
    report = run_soak(seed=7, hours_of_1m=24, kills=6, workdir=tmp_path)
    check(report.format(), report.problems)
    assert report.kills == 6 and report.klines >= 1440
    assert report.fills > 0 and len(report.recovery_s) == 6


def test_soak_short(tmp_path: Path) -> None:
    """The CI-sized soak (default suite, ~40 s): 5 h of 1m klines, two kills, faults at twice the long rate.
    Passed 3 runs in a row, and a 4th with both cores busy, before it was let into the default suite."""
    report = run_soak(seed=3, hours_of_1m=5, kills=2, workdir=tmp_path, fault_rate=2.0)
    check(report.format(), report.problems)
    assert report.kills == 2 and report.fills > 0


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
