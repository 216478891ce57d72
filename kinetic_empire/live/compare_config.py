"""Do a paper run and a backtest describe the same trading? Their configurations, side by side.

``kinetic compare`` reads the paper run's config from its journal and the backtest's from its
``config.json`` and names every difference that changes trades: strategies, symbols, timeframes,
parameters (defaults filled in from the strategy when it can be loaded), risk settings, fees, initial
balance, and a backtest whose fills are evaluated on coarser klines than the sandbox's 1m updates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.timeframes import TIMEFRAME_MS
from .journal import read_meta

Defaults = Callable[[str], tuple[str, dict[str, Any]] | None]
"""Strategy name -> (declared timeframe, default parameters), or None when it cannot be loaded."""


def journal_config(run_dir: Path) -> dict[str, Any]:
    """The configuration a paper run recorded in its journal (empty when it recorded none)."""
    config = read_meta(run_dir / "journal.sqlite").get("config")
    return dict(config) if isinstance(config, Mapping) else {}


def backtest_config(backtest_dir: Path) -> dict[str, Any]:
    """A backtest results folder's ``config.json`` (empty when it has none or it is not JSON)."""
    try:
        data = json.loads((backtest_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def registry_defaults() -> Defaults:
    """Defaults from the strategy registry (``strategies/`` and entry points); None for unknown names."""
    from ..strategy.registry import build_registry

    try:
        registry = build_registry([])
    except Exception:  # a broken plugin folder must not stop a comparison: compare as written
        return lambda _name: None

    def lookup(name: str) -> tuple[str, dict[str, Any]] | None:
        try:
            cls = registry.get(name)
        except Exception:
            return None
        return cls.timeframe, {k: p.default for k, p in cls.parameters().items()}

    return lookup


def _strategies(config: Mapping[str, Any], defaults: Defaults) -> dict[str, tuple[set[str], str, dict[str, Any]]]:
    out = {}
    for s in config.get("strategies") or []:
        if not isinstance(s, Mapping) or "name" not in s:
            continue
        name = str(s["name"])
        known = defaults(name)
        tf = s.get("timeframe") or (known[0] if known else "(its default)")
        params = {**(known[1] if known else {}), **dict(s.get("params") or {})}
        out[name] = (set(s.get("symbols") or []), str(tf), {k: _plain(v) for k, v in params.items()})
    return out


def _plain(value: Any) -> Any:
    """3, 3.0 and "3" are one value in a config echo (YAML numbers, CLI strings)."""
    try:
        return float(value) if not isinstance(value, bool) else value
    except (TypeError, ValueError):
        return value


def config_mismatches(live: Mapping[str, Any], backtest: Mapping[str, Any], defaults: Defaults | None = None) -> list[
        str]:  # fmt: skip
    """Every difference between the two configurations that changes trades, one sentence each."""
    if not live or not backtest:
        return [] if live and backtest else ["a configuration is missing (journal meta or config.json): "
                                             "cannot check that both sides ran the same strategies"]
    defaults = defaults or registry_defaults()
    a, b = _strategies(live, defaults), _strategies(backtest, defaults)
    out = []
    if set(a) != set(b):
        out.append(f"strategies differ: paper run {sorted(a)}, backtest {sorted(b)}")
    for name in sorted(set(a) & set(b)):
        (sa, ta, pa), (sb, tb, pb) = a[name], b[name]
        if sa != sb:
            out.append(f"{name}: symbols differ: paper run {sorted(sa)}, backtest {sorted(sb)}")
        if ta != tb:
            out.append(f"{name}: timeframe differs: paper run {ta}, backtest {tb}")
        changed = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
        if changed:
            shown = ", ".join(f"{k} {pa.get(k)!r} vs {pb.get(k)!r}" for k in changed)
            out.append(f"{name}: parameters differ (paper run vs backtest): {shown}")
    if _canon(live.get("risk")) != _canon(backtest.get("risk")):
        out.append("risk settings differ (sizing, leverage, margin type or guards): sizes and denials will differ")
    lm, bm = (live.get("live") or {}).get("margin_type"), (backtest.get("backtest") or {}).get("margin_type")
    if lm and bm and lm != bm:  # risk.margin_type overrides it per symbol (compared with risk above)
        out.append(f"margin type differs: paper run {lm}, backtest {bm}: margin and liquidation prices will differ")
    out += _venue_mismatches(live, backtest, [t for _s, t, _p in a.values()])
    return out


def _canon(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, default=str)


def _venue_mismatches(live: Mapping[str, Any], backtest: Mapping[str, Any], timeframes: list[str]) -> list[str]:
    out = []
    bt = backtest.get("backtest") or {}
    if (live.get("live") or {}).get("venue", "sandbox") == "sandbox":
        sb = live.get("sandbox") or {}
        for what, x, y in (("initial balance", sb.get("initial_balance"), bt.get("initial_balance")),
                           ("fees", _canon(sb.get("fees")), _canon(bt.get("fees"))),
                           ("funding rate", sb.get("funding_rate"), bt.get("funding_rate"))):  # fmt: skip
            if x is not None and y is not None and _plain(x) != _plain(y):
                out.append(f"{what} differs: paper run {x}, backtest {y}")
    execution = bt.get("execution_timeframe", "auto")
    coarser = [t for t in timeframes if t in TIMEFRAME_MS and TIMEFRAME_MS[t] > 60_000]
    if execution != "1m" and coarser:
        where = f"{execution} klines" if execution != "auto" else "each strategy's own klines (auto)"
        out.append(f"the backtest evaluates fills and stops on {where}, the paper run on every price update: "
                   "set backtest.execution_timeframe: 1m for a like-for-like comparison")
    return out
