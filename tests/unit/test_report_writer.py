"""Results folder: atomic, reproducible, self-contained; plus the terminal table and an end-to-end run."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import BalanceReason, OrderStatus, OrderType, Side
from kinetic_empire.core.events import (
    BalanceChanged,
    KlineClosed,
    OrderFilled,
    OrderRequest,
    PositionChanged,
    RiskDenied,
)
from kinetic_empire.portfolio import Portfolio
from kinetic_empire.report import FILES, compute_metrics, drawdown_pct, format_summary, write_results
from kinetic_empire.report import writer as writer_mod
from kinetic_empire.report.plotlyjs import plotly_js_path

SYM = "BTCUSDT"
T0 = 1_704_067_200_000  # 2024-01-01 UTC
MIN = 60_000


def run_portfolio() -> tuple[Portfolio, np.ndarray, np.ndarray]:
    """A tiny scripted run: buy on bar 2, sell on bar 5, buy again on bar 7 (left open)."""
    bus = EventBus()
    pf = Portfolio(bus, D("1000"))
    closes = np.array([100, 101, 102, 104, 103, 106, 105, 104, 107, 108], dtype=float)
    ts = T0 + np.arange(closes.size, dtype=np.int64) * MIN + MIN - 1
    wallet = D("1000")
    oid = 0

    def fill(t: int, cid: str, side: Side, qty: str, price: float, pnl: str) -> None:
        nonlocal wallet, oid
        oid += 1
        fee = (D(qty) * D(repr(price)) * D("0.0004")).quantize(D("1e-8"))
        bus.publish(
            OrderFilled(
                client_order_id=cid, order_id=oid, trade_id=oid, symbol=SYM, side=side,
                order_type=OrderType.MARKET, quantity=D(qty), price=D(repr(price)), commission=fee,
                realized_pnl=D(pnl), is_maker=False, status=OrderStatus.FILLED, ts_event=t, ts_init=t,
            )
        )  # fmt: skip
        wallet += D(pnl) - fee
        bus.publish(BalanceChanged(asset="USDT", wallet_balance=wallet, change=D(pnl) - fee,
                                   reason=BalanceReason.ORDER, ts_event=t, ts_init=t))  # fmt: skip

    def request(t: int, cid: str, side: Side, kind: OrderType) -> None:
        bus.publish(OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="ema", symbol=SYM, side=side,
                                 order_type=kind, quantity=D(1), ts_event=t, ts_init=t))  # fmt: skip

    def position(t: int, qty: str, entry: float) -> None:
        bus.publish(PositionChanged(symbol=SYM, quantity=D(qty), entry_price=D(repr(entry)), leverage=1,
                                    ts_event=t, ts_init=t))  # fmt: skip

    for i, t in enumerate(ts.tolist()):
        open_t = t - MIN + 1
        if i == 2:
            request(open_t, "e1", Side.BUY, OrderType.MARKET)
            fill(open_t, "e1", Side.BUY, "2", float(closes[i - 1]), "0")
            position(open_t, "2", float(closes[i - 1]))
        if i == 5:
            request(open_t, "x1", Side.SELL, OrderType.TAKE_PROFIT_MARKET)
            fill(open_t, "x1", Side.SELL, "2", float(closes[i - 1]), "4")
            position(open_t, "0", 0.0)
        if i == 7:
            request(open_t, "e2", Side.BUY, OrderType.MARKET)
            fill(open_t, "e2", Side.BUY, "1", float(closes[i - 1]), "0")
            position(open_t, "1", float(closes[i - 1]))
            bus.publish(RiskDenied(intent_id="i9", strategy_id="ema", symbol=SYM, code="MAX_POSITIONS",
                                   message="max=1 open=1", ts_event=t, ts_init=t))  # fmt: skip
        c = float(closes[i])
        bus.publish(KlineClosed(symbol=SYM, timeframe="1m", open_time=open_t, open=c, high=c, low=c, close=c,
                                volume=1.0, ts_event=t, ts_init=t), (SYM, "1m"))  # fmt: skip
    return pf, ts, closes


def write(root: Path, run_id: str = "run-1", **kw: object) -> Path:
    pf, ts, closes = run_portfolio()
    eq = pf.equity_curve(ts, {SYM: closes})
    m = compute_metrics(
        ts, eq, pf.trades, pf.initial_balance, pf.fees_total, pf.funding_total,
        pf.liquidation_count, pf.exposure_fraction(ts),
    )  # fmt: skip
    args: dict = {
        "trades": pf.trades,
        "orders": pf.orders,
        "equity": (ts, eq, drawdown_pct(eq, 1000)),
        "metrics": m,
        "config": {"strategy": "ema", "fast": 12, "slow": 26, "balance": D("1000"), "path": Path("x/y")},
        "denials": pf.denials_by_code,
        "title": "EMA cross <BTCUSDT>",
    } | kw
    return write_results(root, run_id, **args)


def test_end_to_end_folder_contents(tmp_path: Path) -> None:
    out = write(tmp_path)
    assert out == tmp_path / "run-1"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["run-1"]  # no temp folder left

    trades = list(csv.DictReader(io.StringIO((out / "trades.csv").read_text())))
    assert len(trades) == 1
    t = trades[0]
    assert (t["side"], t["entry_price"], t["exit_price"], t["exit_reason"]) == (
        "LONG",
        "101",
        "103",
        "take_profit",
    )
    assert t["fees"] == "0.1632" and t["gross_pnl"] == "4" and t["net_pnl"] == "3.8368"

    orders = list(csv.DictReader(io.StringIO((out / "orders.csv").read_text())))
    assert [o["client_order_id"] for o in orders] == ["e1", "x1", "e2"]
    assert orders[0]["strategy_id"] == "ema" and orders[0]["status"] == "FILLED"

    lines = (out / "equity.csv").read_text().splitlines()
    assert lines[0] == "ts_ms,time_utc,equity,drawdown_pct"
    assert lines[1] == f"{T0 + MIN - 1},2024-01-01T00:00:59.999Z,1000.00000000,0.000000"
    assert len(lines) == 11

    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == sorted(metrics)
    assert metrics["trade_count"] == 1 and metrics["exposure_pct"] == 60.0  # bars 2-4 and 7-9
    assert metrics["profit_factor"] is None and any("infinite" in n for n in metrics["notes"])
    assert (out / "denials.csv").read_text() == "code,count\nMAX_POSITIONS,1\n"
    assert json.loads((out / "config.json").read_text())["balance"] == "1000"

    html = (out / "report.html").read_text()
    assert "EMA cross &lt;BTCUSDT&gt;" in html
    assert "MAX_POSITIONS" in html and "take_profit" in html
    # offline: the only script it loads is the plotly.js copied next to it from the installed package
    for external in ("http://", "https://", "<link", 'src="/', "url("):
        assert external not in html
    assert html.count("<script src=") == 1 and '<script src="plotly.min.js">' in html
    assert (out / "plotly.min.js").read_bytes() == plotly_js_path().read_bytes()
    assert (out / "equity.png").read_bytes().startswith(b"\x89PNG")


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a"), write(tmp_path, "b")
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    out = write(tmp_path)
    (out / "marker").write_text("old")
    with pytest.raises(FileExistsError):
        write(tmp_path)
    assert (out / "marker").exists()
    write(tmp_path, overwrite=True)
    assert not (out / "marker").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["run-1"]


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write(tmp_path, config={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_failure_during_overwrite_keeps_the_old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write(tmp_path)
    before = (out / "metrics.json").read_bytes()

    def boom(*_: object, **__: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer_mod, "equity_csv", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write(tmp_path, overwrite=True)
    assert (out / "metrics.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run-1"]


@pytest.mark.parametrize("bad", ["", ".hidden", "a/b", "..", " x"])
def test_run_id_must_be_a_plain_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="run_id"):
        write(tmp_path, bad)


def test_empty_run_writes_headers_and_nulls(tmp_path: Path) -> None:
    ts = np.array([T0], dtype=np.int64)
    eq = np.array([1000.0])
    m = compute_metrics(ts, eq, [], 1000, 0, 0, 0, 0.0) | {"weird": float("inf")}
    out = write_results(
        tmp_path, "empty", trades=[], orders=[], equity=(ts, eq, None), metrics=m,
        config={}, denials={}, title="nothing happened",
    )  # fmt: skip
    assert (out / "trades.csv").read_text().startswith("trade_id,strategy_id,symbol,side,")
    assert (out / "orders.csv").read_text().startswith("time_utc,client_order_id,")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weird"] is None and metrics["sharpe"] is None
    assert any(n.startswith("weird:") for n in metrics["notes"])
    assert "No trades." in (out / "report.html").read_text()


def test_format_summary_is_aligned_and_readable() -> None:
    pf, ts, closes = run_portfolio()
    eq = pf.equity_curve(ts, {SYM: closes})
    m = compute_metrics(ts, eq, pf.trades, 1000, pf.fees_total, 0, 0, pf.exposure_fraction(ts))
    text = format_summary(m)
    lines = text.splitlines()
    body = [ln for ln in lines[1 : lines.index("Notes:") - 1]]
    assert len({len(ln) for ln in body}) == 1  # values right-aligned to one column
    assert any(ln.startswith("Total return") and ln.endswith(" %") for ln in body)
    assert any(ln.startswith("Profit factor") and ln.endswith("n/a") for ln in body)
    assert any(ln.startswith("Start") and "2024-01-01 00:00" in ln for ln in body)
    assert "  - profit_factor: no losing trade (infinite)" in lines
    assert format_summary({}) == "(no metrics)"


def test_format_value_kinds() -> None:
    from kinetic_empire.report.table import format_value

    assert format_value(None, "pct") == "n/a"
    assert format_value(12.345, "pct") == "12.35 %"
    assert format_value(1.18e10, "pct") == "1.180e+10 %"
    assert format_value(1234.5, "money") == "1,234.50"
    assert format_value(7, "int") == "7"
    assert format_value(1.5, "ratio") == "1.500"
    assert format_value(0, "time") == "-"


def test_a_killed_writers_hidden_folder_is_swept_by_the_next_write(tmp_path: Path) -> None:
    """A backtest SIGKILLed while writing its results leaves ``.tmp-<run>.<pid>-*``; the next write into the
    same results folder removes it, and leaves a folder of a writer that is still running alone."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import os, signal, tempfile; from pathlib import Path\n"
        f"root = Path({str(tmp_path)!r})\n"
        "d = Path(tempfile.mkdtemp(prefix=f'.tmp-run-9.{os.getpid()}-', dir=root))\n"
        "(d / 'report.html').write_text('half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    (left,) = [p.name for p in tmp_path.iterdir()]
    assert left.startswith(".tmp-run-9.")
    alive = tmp_path / f".tmp-run-8.{os.getpid()}-abc"  # a writer still running (this process)
    alive.mkdir()
    write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "run-1"])
