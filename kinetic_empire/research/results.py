"""What a study leaves behind, next to its ``study.db``: a table of trials, the best parameters as a
ready backtest config, a JSON summary and the HTML report; and the terminal summary.

    backtests/optimize/<name>/
        study.db        the Optuna study (resumable)
        trials.csv      one row per trial: number, state, objectives, parameters, trade count, key metrics
        best.yaml       the backtest config with the best parameters: kinetic backtest --config best.yaml
        summary.json    best trial(s), walk-forward windows, timing
        report.html     objective history, importance, parallel coordinates, heatmap, IS vs OOS
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial

from ..backtest import BacktestConfig
from .optimizer import OptimizeResult
from .study import trial_params
from .trial import trial_config

KEY_METRICS = ("total_return_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct", "profit_factor",
               "win_rate_pct")  # fmt: skip


def trial_rows(study: optuna.Study, objective_names: list[str]) -> list[dict[str, Any]]:
    """One dict per trial, in trial order: the table's rows."""
    rows = []
    space = list(study.user_attrs.get("space", {}))
    for t in study.get_trials(deepcopy=False):
        metrics = t.user_attrs.get("metrics", {})
        params = trial_params(t)
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower()}
        for i, name in enumerate(objective_names):
            row[name] = t.values[i] if t.values is not None else None
        row.update({f"param_{k}": params.get(k) for k in space or params})
        row["trade_count"] = metrics.get("trade_count")
        row.update({k: metrics.get(k) for k in KEY_METRICS if k not in objective_names})
        row["feasible"] = all(v <= 0 for v in t.user_attrs.get("violations", [])) if metrics else None
        row["note"] = t.user_attrs.get("error", "pruned" if t.state.name == "PRUNED" else "")
        rows.append(row)
    return rows


def best_config(config: BacktestConfig, target: int, params: dict[str, Any],
                base: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The backtest config with the best parameters, as YAML-ready data. ``base`` is the study file's own
    backtest part: kept as the user wrote it (comments aside), with the run's dates, data and the params."""
    if base is None:
        data = trial_config(config, target, params).to_dict()
        bt = data["backtest"]
        for key in ("initial_balance", "slippage_bps", "funding_rate"):
            bt[key] = float(bt[key])
        bt["fees"] = {k: float(v) for k, v in bt["fees"].items()}
        for s in data["strategies"]:
            if s["timeframe"] is None:
                del s["timeframe"]
    else:
        data = copy.deepcopy(dict(base))
        data["backtest"] = bt = dict(data.get("backtest") or {})
        strategies = [dict(s) for s in data["strategies"]]
        strategies[target]["params"] = {**(strategies[target].get("params") or {}), **params}
        data["strategies"] = strategies
        bt["data"] = list(config.data)
    for key in ("start", "end"):
        value = getattr(config, key)
        bt[key] = None if value is None else _iso(value)
    return data


def write_outputs(result: OptimizeResult, directory: Path, name: str,
                  base: Mapping[str, Any] | None = None) -> dict[str, Path]:  # fmt: skip
    """Write every file of the study's folder; each is replaced whole (temporary file, then rename).
    ``base``: the study file's backtest part, the model for ``best.yaml``."""
    from .report import render_report

    names = [o.name for o in result.plan.settings.objectives]
    study = result.studies[-1]
    rows = [dict(r, window=i + 1) if len(result.studies) > 1 else r
            for i, s in enumerate(result.studies) for r in trial_rows(s, names)]  # fmt: skip
    written = {"trials": directory / "trials.csv", "summary": directory / "summary.json",
               "report": directory / "report.html"}  # fmt: skip
    _atomic(written["trials"], _csv(rows))
    if result.best_params is not None:
        data = best_config(result.config, result.plan.target, result.best_params, base)
        header = (f"# Best parameters of study {name!r} ({', '.join(names)}); "
                  f"run: kinetic backtest --config {directory / 'best.yaml'}\n")  # fmt: skip
        written["best"] = directory / "best.yaml"
        _atomic(written["best"], header + yaml.safe_dump(data, sort_keys=False))
    _atomic(written["summary"], json.dumps(summary(result, name), indent=2, default=str))
    _atomic(written["report"], render_report(result, study, rows, name, directory))
    return written


def summary(result: OptimizeResult, name: str) -> dict[str, Any]:
    s = result.plan.settings
    out: dict[str, Any] = {
        "study": name,
        "strategy": result.plan.space.strategy,
        "objectives": [{"name": o.name, "direction": o.direction} for o in s.objectives],
        "constraints": [c.describe() for c in s.constraints],
        "space": result.plan.space.to_dict(),
        "sampler": s.sampler_name,
        "seed": s.seed,
        "batch": s.batch,
        "best": [_trial_summary(t) for t in result.best],
        "best_params": result.best_params,
        "trials_run_now": result.trials_run,
        "elapsed_s": round(result.elapsed_s, 3),
        "replay_share_of_trial_time": round(result.replay_s / result.trial_s, 3) if result.trial_s else None,
        "notes": result.notes,
    }
    wf = result.walk_forward
    if wf is not None:
        out["walk_forward"] = {
            "windows": [
                {
                    "window": r.window.index,
                    "in_sample": [_iso(r.window.is_start), _iso(r.window.is_end)],
                    "out_of_sample": [_iso(r.window.oos_start), _iso(r.window.oos_end)],
                    "params": r.params,
                    "is_values": r.is_values,
                    "oos_values": r.oos_values,
                    "is_return_pct": r.in_sample.get("total_return_pct"),
                    "oos_return_pct": r.out_of_sample.get("total_return_pct"),
                }
                for r in wf.windows
            ],
            "stitched_oos": {k: v for k, v in wf.metrics.items() if k != "notes"},
        }
    return out


def format_summary(result: OptimizeResult, name: str, written: dict[str, Path]) -> str:
    s = result.plan.settings
    lines = [f"study {name}: {result.plan.space.strategy}, {', '.join(o.name for o in s.objectives)} "
             f"({s.sampler_name}, seed {s.seed}, batch {s.batch})"]  # fmt: skip
    rate = result.trials_run / result.elapsed_s * 60 if result.elapsed_s > 0 else 0.0
    lines.append(f"{result.trials_run} trials run now in {result.elapsed_s:.1f} s ({rate:.0f}/min)")
    if not result.best:
        lines.append("no feasible trial: loosen the constraints or widen the space")
    for t in result.best[:5]:
        values = ", ".join(f"{n} {v:.4g}" for n, v in zip((o.name for o in s.objectives), t.values))
        trades = t.user_attrs.get("metrics", {}).get("trade_count")
        lines.append(f"best #{t.number}: {values}, {trades} trades; {_params_text(trial_params(t))}")
    wf = result.walk_forward
    if wf is not None:
        lines.append("walk-forward (in-sample -> out-of-sample return %):")
        for r in wf.windows:
            lines.append(f"  window {r.window.index}: {_pct(r.in_sample.get('total_return_pct'))} -> "
                         f"{_pct(r.out_of_sample.get('total_return_pct'))}  {_params_text(r.params)}")  # fmt: skip
        if wf.metrics:
            lines.append(f"  stitched out-of-sample: return {_pct(wf.metrics.get('total_return_pct'))}, "
                         f"max drawdown {_pct(wf.metrics.get('max_drawdown_pct'))}, "
                         f"{wf.metrics.get('trade_count')} trades")  # fmt: skip
    lines += result.notes
    for key, path in written.items():
        lines.append(f"{key}: {path}")
    return "\n".join(lines)


def _trial_summary(t: FrozenTrial) -> dict[str, Any]:
    return {"number": t.number, "values": t.values, "params": trial_params(t),
            "metrics": t.user_attrs.get("metrics", {})}  # fmt: skip


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):+.2f} %"


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%d") if dt.hour == dt.minute == dt.second == 0 else dt.strftime("%Y-%m-%dT%H:%M:%S")


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
