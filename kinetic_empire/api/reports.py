"""Backtest results and past runs, listed for the runs page and served read-only under ``/reports/``.

``/reports/backtests/<id>/<file>`` is a file of ``<results_dir>/<id>/``; ``/reports/runs/<id>/<file>`` one of
``<runs_dir>/<id>/report/``. Ids must be safe names (letters, digits, ``. _ - +``, no leading dot) and files
one of the names a results folder holds, so no request can reach anything else (no ``..``, no journal, no
token file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import KineticError
from ..core.names import is_safe_name

REPORT_FILES = ("report.html", "metrics.json", "trades.csv", "orders.csv", "equity.csv", "denials.csv",
                "equity.png", "config.json", "execution_quality.csv", "execution_quality.json",
                "plotly.min.js")  # written next to report.html so the report's charts work offline
_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".csv": "text/csv; charset=utf-8",
          ".png": "image/png", ".js": "text/javascript; charset=utf-8"}
KINDS = ("backtests", "runs")


class ReportNotFound(KineticError):
    pass


class ReportLibrary:
    """The two folders of results the gateway can show: backtests and live runs."""

    def __init__(self, results_dir: Path, runs_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self.runs_dir = Path(runs_dir)

    def _folder(self, kind: str, run_id: str) -> Path:
        if kind == "backtests":
            return self.results_dir / run_id
        return self.runs_dir / run_id / "report"

    def listing(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: self._list(kind) for kind in KINDS}

    def _list(self, kind: str) -> list[dict[str, Any]]:
        root = self.results_dir if kind == "backtests" else self.runs_dir
        if not root.is_dir():
            return []
        out = []
        for entry in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
            if not is_safe_name(entry.name) or not entry.is_dir():
                continue
            folder = self._folder(kind, entry.name)
            files = [f for f in REPORT_FILES if (folder / f).is_file()]
            if kind == "backtests" and not files:
                continue
            item: dict[str, Any] = {
                "id": entry.name, "kind": kind,
                "files": {f: f"/reports/{kind}/{entry.name}/{f}" for f in files},
                "metrics": _metrics(folder / "metrics.json"),
            }
            if kind == "runs":
                item["has_journal"] = (entry / "journal.sqlite").is_file()
            out.append(item)
        return out

    def file(self, kind: str, run_id: str, name: str) -> tuple[Path, str]:
        """(path, media type) of one report file; ReportNotFound for anything not a listed report file."""
        if kind not in KINDS:
            raise ReportNotFound(f"no report kind {kind!r} (backtests or runs)")
        if not is_safe_name(run_id):
            raise ReportNotFound(f"no report {run_id!r}: ids are letters, digits, '.', '_', '-', '+'")
        if name not in REPORT_FILES:
            raise ReportNotFound(f"no report file {name!r}: one of {', '.join(REPORT_FILES)}")
        path = self._folder(kind, run_id) / name
        if not path.is_file():
            raise ReportNotFound(f"{kind}/{run_id} has no {name}")
        return path, _TYPES[path.suffix]


def _metrics(path: Path) -> dict[str, Any]:
    """A few headline figures for the listing; {} when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    keys = ("total_return_pct", "final_equity", "max_drawdown_pct", "trades", "win_rate_pct", "sharpe",
            "net_pnl", "start", "end")
    return {k: data[k] for k in keys if k in data}
