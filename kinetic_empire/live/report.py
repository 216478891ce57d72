"""``kinetic report <run-id>``: the results folder of a live run, rendered from its journal.

The journal's events are replayed, in their original order, into a fresh bus with a
:class:`~kinetic_empire.portfolio.Portfolio` listening, exactly as during the run; the equity curve is
marked at the closes of the klines the run received. The same writer as a backtest's produces the same
files (trades, orders, equity, metrics, chart, HTML), so the two can be read side by side: the HTML has the
same candle chart per traded symbol with its trades marked, from the klines the run journaled. A live run's report
also has an execution-quality section (:mod:`.execution_quality`): slippage per order and in total, latency
percentiles and rejections by code, with the per-order figures in ``execution_quality.csv``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bus import EventBus
from ..core.errors import KineticError
from ..core.events import Alert, KlineClosed, OrderRejected, StrategyHalted
from ..core.names import safe_name
from ..core.timeframes import TIMEFRAME_MS
from ..portfolio import Portfolio, step_lookup
from ..report import PriceChart, compute_metrics, format_summary, write_results
from ..report.metrics import Metrics
from .execution_quality import ExecutionQuality, render_section
from .journal import read_events, read_meta

REPORT_DIR = "report"


class RunNotFound(KineticError):
    pass


def run_dir_for(run: str | Path, runs_dir: str | Path = "runs", where: str = "run id") -> Path:
    """A path to a run folder, or a run id (a safe name, see core/names.py) under ``runs_dir``."""
    p = Path(run)
    if has_file(p, "journal.sqlite"):
        return p
    q = Path(runs_dir) / safe_name(str(run), "run id", where)
    if (q / "journal.sqlite").is_file():
        return q
    raise RunNotFound(f"no journal for run {run!r} (looked in {p} and {q})")


def has_file(folder: Path, name: str) -> bool:
    """``folder/name`` is a file; False (not OSError) for a path no file system takes, e.g. too long."""
    try:
        return (folder / name).is_file()
    except OSError:
        return False


class Replayed:
    """A run rebuilt from its journal: portfolio, kline closes and counts."""

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / "journal.sqlite"
        self.meta = read_meta(path)
        self.initial_balance = Decimal(str(self.meta.get("initial_balance", "0")))
        bus = EventBus()
        self.portfolio = Portfolio(bus, self.initial_balance)
        for sym, lev in (self.meta.get("leverage") or {}).items():
            self.portfolio.set_leverage(sym, int(lev))
        self.klines: dict[tuple[str, str], list[tuple[int, float]]] = {}
        self.charted = _charted(self.meta)  # symbol -> the strategies trading it
        self.candles: dict[tuple[str, str], list[tuple[int, float, float, float, float]]] = {}  # for price charts
        self.rejections: list[OrderRejected] = []
        self.halts: list[StrategyHalted] = []
        self.group_alerts = {"group_kline_missing": 0, "group_kline_late": 0}  # multi-symbol: skipped times, late legs
        self.events = 0
        self.quality = ExecutionQuality(speed=_replay_speed(self.meta))
        for event in read_events(path):
            self.events += 1
            self.quality.on_event(event)
            if isinstance(event, KlineClosed):
                topic = (event.symbol, event.timeframe)
                self.klines.setdefault(topic, []).append((event.ts_event, event.close))
                if event.symbol in self.charted:
                    rows = self.candles.setdefault(topic, [])
                    if not rows or event.open_time > rows[-1][0]:
                        rows.append((event.open_time, event.open, event.high, event.low, event.close))
            elif isinstance(event, OrderRejected):
                self.rejections.append(event)
            elif isinstance(event, StrategyHalted):
                self.halts.append(event)
            elif isinstance(event, Alert) and event.kind in self.group_alerts:
                self.group_alerts[event.kind] += 1
            bus.publish(event)

    def timeline(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Close times of each symbol's finest timeframe, with each symbol's close carried forward."""
        finest: dict[str, str] = {}
        for sym, tf in self.klines:
            if sym not in finest or TIMEFRAME_MS[tf] < TIMEFRAME_MS[finest[sym]]:
                finest[sym] = tf
        series = {sym: np.asarray(self.klines[(sym, tf)], dtype=np.float64) for sym, tf in finest.items()}
        parts = [s[:, 0].astype(np.int64) for s in series.values() if len(s)]
        ts = np.unique(np.concatenate(parts)) if parts else np.array([], dtype=np.int64)
        closes: dict[str, np.ndarray] = {}
        for sym, s in series.items():
            idx = np.searchsorted(s[:, 0].astype(np.int64), ts, side="right") - 1
            closes[sym] = np.where(idx >= 0, s[np.clip(idx, 0, None), 1], np.nan)
        for sym in self.portfolio.symbols_traded():
            if sym not in closes:  # a position on a symbol we had no klines for: marked at its entry
                hts, _q, hentry = self.portfolio.position_history(sym)
                closes[sym] = step_lookup(hts, hentry, ts, 0.0)
        return ts, closes

    def price_charts(self) -> list[PriceChart]:
        """A candle chart per traded symbol, on the finest timeframe the run received (the price timeframe when
        set, else the strategy's): the trades' times fall inside its candles. Long runs are coarsened by the
        figure code, as a backtest's."""
        finest: dict[str, str] = {}
        for sym, tf in self.candles:
            if sym not in finest or TIMEFRAME_MS[tf] < TIMEFRAME_MS[finest[sym]]:
                finest[sym] = tf
        charts = []
        for sym in sorted(finest):
            tf = finest[sym]
            a = np.asarray(self.candles[(sym, tf)], dtype=np.float64)
            charts.append(PriceChart(symbol=sym, timeframe=tf, strategy_id=self.charted[sym],
                                     open_time=a[:, 0].astype(np.int64), open=a[:, 1], high=a[:, 2], low=a[:, 3],
                                     close=a[:, 4]))
        return charts

    def metrics(self, ts: np.ndarray, equity: np.ndarray) -> Metrics:
        p = self.portfolio
        m = compute_metrics(ts, equity, p.trades, p.initial_balance, p.fees_total, p.funding_total,
                            p.liquidation_count, p.exposure_fraction(ts),
                            funding_split=(p.funding_received, p.funding_paid))
        m["open_positions_at_end"] = len(p.positions())
        m["risk_denials"] = sum(p.denials_by_code.values())
        m["order_rejections"] = len(self.rejections)
        m["klines_received"] = sum(len(v) for v in self.klines.values())
        m["strategies_halted"] = len(self.halts)
        m["venue"] = str(self.meta.get("venue", ""))
        skipped, late = self.group_alerts["group_kline_missing"], self.group_alerts["group_kline_late"]
        if skipped or late:
            m["group_times_skipped"] = skipped
            m["group_klines_late"] = late
        return m

    def group_line(self) -> str:
        """Multi-symbol strategies: kline times skipped (a symbol's kline not in within group_wait_s) and late
        klines dropped, or "" when there were none."""
        skipped, late = self.group_alerts["group_kline_missing"], self.group_alerts["group_kline_late"]
        if not (skipped or late):
            return ""
        return (f"Kline times skipped by multi-symbol strategies, some symbol's kline not in time: {skipped}; "
                f"late klines dropped: {late}")


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/report/`` from the journal (replacing an older one) and return its path."""
    run = Replayed(run_dir)
    ts, closes = run.timeline()
    equity = run.portfolio.equity_curve(ts, closes) if len(ts) else np.array([], dtype=np.float64)
    metrics = run.metrics(ts, equity)
    p = run.portfolio
    end = int(ts[-1]) if len(ts) else 0
    config: dict[str, Any] = dict(run.meta.get("config") or {})
    config["run"] = {k: run.meta.get(k) for k in ("run_id", "venue", "rest_url", "account", "started_market_ms",
                                                  "ended_market_ms", "shutdown", "fees")}
    names = " + ".join(dict.fromkeys(s.get("name", "?") for s in config.get("strategies", [])))
    symbols = ", ".join(dict.fromkeys(sym for s in config.get("strategies", []) for sym in s.get("symbols", [])))
    path = write_results(
        run_dir, REPORT_DIR,
        trades=[*p.trades, *p.open_trades(end)], orders=p.orders, equity=(ts, equity, None), metrics=metrics,
        config=config, denials=p.denials_by_code,
        title=f"{names} on {symbols} ({run.meta.get('venue', 'live')} paper run {run.meta.get('run_id', '')})",
        overwrite=True, price_charts=run.price_charts(), warnings=[line for line in (run.group_line(),) if line],
    )
    _add_execution_quality(path, run.quality)
    return path


def _charted(meta: dict[str, Any]) -> dict[str, str]:
    """Every symbol a strategy of the run's config trades -> the ids of those strategies."""
    out: dict[str, list[str]] = {}
    for s in (meta.get("config") or {}).get("strategies", []):
        for sym in s.get("symbols", []):
            ids = out.setdefault(str(sym), [])
            if s.get("name") and str(s["name"]) not in ids:
                ids.append(str(s["name"]))
    return {sym: " + ".join(ids) or "?" for sym, ids in out.items()}


def _replay_speed(meta: dict[str, Any]) -> float | None:
    """The sandbox's replay speed (market time per wall time) when the run was on the sandbox, else None."""
    if meta.get("venue") != "sandbox":
        return None
    speed = ((meta.get("config") or {}).get("sandbox") or {}).get("speed")
    return float(speed) if isinstance(speed, int | float) and speed > 0 else None


def _add_execution_quality(report: Path, quality: ExecutionQuality) -> None:
    """execution_quality.json and .csv next to the report, and its section in report.html."""
    summary = quality.summary()
    (report / "execution_quality.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    (report / "execution_quality.csv").write_bytes(quality.per_order_csv())
    html = report / "report.html"
    text = html.read_text(encoding="utf-8")
    if "</body>" in text:
        head, tail = text.rsplit("</body>", 1)
        text = f"{head}{render_section(summary)}</body>{tail}"
    else:
        text += render_section(summary)
    html.write_text(text, encoding="utf-8")


def summary(run_dir: Path) -> str:
    run = Replayed(run_dir)
    ts, closes = run.timeline()
    equity = run.portfolio.equity_curve(ts, closes) if len(ts) else np.array([], dtype=np.float64)
    group = run.group_line()
    return format_summary(run.metrics(ts, equity)) + (f"\n{group}" if group else "")
