"""Write a run's results folder atomically and reproducibly.

Everything is rendered in memory, written into ``results_root/.tmp-<run_id>-<random>/`` and renamed
to ``results_root/<run_id>/`` in one step, so a reader (or a crashed run) never sees half a folder;
on any failure the temporary folder is removed. Identical inputs give byte-identical files: sorted
JSON keys, fixed float formats, no timestamps of the writing itself.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.processes import pid_alive
from ..core.rules import SymbolRules
from ._rows import cell, columns, dumps
from .charts import render_equity_png
from .csvfiles import orders_csv, trades_csv
from .figures import PriceChart
from .html import render_html
from .metrics import MetricValue, drawdown_pct
from .plotlyjs import FILE_NAME as PLOTLY_FILE
from .plotlyjs import plotly_js

FILES = (
    "trades.csv",
    "orders.csv",
    "equity.csv",
    "denials.csv",
    "metrics.json",
    "equity.png",
    "report.html",
    "plotly.min.js",
    "config.json",
)
"""What a results folder holds (report.html draws its charts with the plotly.min.js next to it)."""



def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def records_csv(rows: Sequence[Any], default_columns: Sequence[str]) -> bytes:
    """CSV of dataclass records; the header is written even when there are no rows."""
    names = columns(rows) or list(default_columns)
    return _csv(names, [[cell(getattr(r, n)) for n in names] for r in rows])


def equity_csv(timestamps_ms: np.ndarray, equity: np.ndarray, drawdown: np.ndarray) -> bytes:
    """ts_ms, ISO UTC time, equity (8 places) and drawdown in percent (6 places)."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    when = np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms", timezone="UTC")
    lines = ["ts_ms,time_utc,equity,drawdown_pct"]
    lines += [
        f"{t},{w},{e:.8f},{d:.6f}"
        for t, w, e, d in zip(
            ts.tolist(), when.tolist(), np.asarray(equity).tolist(), np.asarray(drawdown).tolist()
        )
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def stable_metrics(metrics: Mapping[str, MetricValue]) -> dict[str, MetricValue]:
    """Floats to 12 significant digits (noise-free across platforms); NaN/inf become null with a note."""
    out: dict[str, MetricValue] = {}
    notes = list(metrics.get("notes") or [])  # type: ignore[arg-type]
    for key, value in metrics.items():
        if key == "notes":
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                notes.append(f"{key}: {value} (not representable in JSON)")
                value = None
            else:
                value = float(f"{value:.12g}")
        out[key] = value
    out["notes"] = notes
    return out


def _check_run_id(run_id: str) -> None:
    if not run_id or run_id.startswith(".") or "/" in run_id or "\\" in run_id or run_id != run_id.strip():
        raise ValueError(f"run_id {run_id!r} must be a plain folder name (no slashes, not starting with '.')")


def render_results(
    *,
    trades: Sequence[Any],
    orders: Sequence[Any],
    equity: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    metrics: Mapping[str, MetricValue],
    config: Mapping[str, Any],
    denials: Mapping[str, int],
    title: str,
    closes: Mapping[str, np.ndarray] | None = None,
    price_charts: Sequence[PriceChart] = (),
    warnings: Sequence[str] = (),
    rules: Mapping[str, SymbolRules] | None = None,
) -> dict[str, bytes]:
    """Every file of a results folder, by name, as bytes (nothing touches the disk).

    Optional: ``closes`` (per symbol, aligned to the equity timestamps) for the buy-and-hold line,
    ``price_charts`` for a candle chart per symbol, ``warnings`` shown at the top of the report, and
    ``rules`` to round CSV prices and quantities to each symbol's precision.
    """
    ts, values, dd = equity
    ts = np.asarray(ts, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    initial = metrics.get("initial_balance")
    dd = drawdown_pct(values, initial if isinstance(initial, float | int) else None) if dd is None else dd
    dd = np.asarray(dd, dtype=np.float64)
    png = render_equity_png(ts, values, dd, title=title)
    clean = stable_metrics(metrics)
    files = {
        "trades.csv": trades_csv(trades, rules),
        "orders.csv": orders_csv(orders, rules),
        "equity.csv": equity_csv(ts, values, dd),
        "denials.csv": _csv(["code", "count"], [[k, str(denials[k])] for k in sorted(denials)]),
        "metrics.json": dumps(clean).encode("utf-8"),
        "equity.png": png,
        "report.html": render_html(
            title=title, metrics=clean, trades=trades, orders=orders, denials=denials, config=config, png=png,
            equity=(ts, values, dd), closes=closes, price_charts=price_charts, warnings=warnings, rules=rules,
        ).encode("utf-8"),
        PLOTLY_FILE: plotly_js(),
        "config.json": dumps(config).encode("utf-8"),
    }
    return files


def write_results(
    results_root: Path,
    run_id: str,
    *,
    trades: Sequence[Any],
    orders: Sequence[Any],
    equity: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    metrics: Mapping[str, MetricValue],
    config: Mapping[str, Any],
    denials: Mapping[str, int],
    title: str,
    overwrite: bool = False,
    closes: Mapping[str, np.ndarray] | None = None,
    price_charts: Sequence[PriceChart] = (),
    warnings: Sequence[str] = (),
    rules: Mapping[str, SymbolRules] | None = None,
) -> Path:
    """Write ``results_root/<run_id>/`` atomically and return its path.

    ``equity`` is ``(timestamps_ms, equity, drawdown_pct)``; drawdown None is computed from the curve.
    An existing run folder is an error unless ``overwrite`` (then it is replaced in one rename and the
    old one deleted afterwards).
    """
    _check_run_id(run_id)
    root = Path(results_root)
    final = root / run_id
    if (final.exists() or final.is_symlink()) and not overwrite:
        raise FileExistsError(f"results folder {final} exists; choose another --run-id or pass --overwrite "
                              "(overwrite=True) to replace it")
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale_results(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}.{os.getpid()}-", dir=root))
    try:
        files = render_results(
            trades=trades, orders=orders, equity=equity, metrics=metrics,
            config=config, denials=denials, title=title, closes=closes, price_charts=price_charts,
            warnings=warnings, rules=rules,
        )  # fmt: skip
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a results folder is meant to be shared
        _move_into_place(tmp, final, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


_STALE = re.compile(r"^\.(?:tmp|old)-.+\.(?P<pid>\d+)-[^-]+$")


def sweep_stale_results(root: Path) -> list[Path]:
    """Remove the hidden ``.tmp-*``/``.old-*`` folders a killed writer left in ``root`` (its pid is gone);
    a folder of a writer still running is left alone. Returns what was removed."""
    removed = []
    for entry in root.iterdir() if root.is_dir() else ():
        m = _STALE.match(entry.name)
        if m is None or not entry.is_dir() or pid_alive(int(m["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed



def _move_into_place(tmp: Path, final: Path, overwrite: bool) -> None:
    if not (final.exists() or final.is_symlink()):
        os.rename(tmp, final)
        return
    if not overwrite:
        raise FileExistsError(f"results folder {final} appeared while writing; not replaced")
    old = final.with_name(".old-" + tmp.name.removeprefix(".tmp-"))
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
