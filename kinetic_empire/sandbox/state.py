"""``--state <file>``: accounts, orders, positions and the replay position as JSON, written atomically.

The exchange's own part comes from :mod:`kinetic_empire.exchange.state`; this module adds the replay
position and the sandbox's algo-order records.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exchange.state import export_state, import_state, order_by_id
from .accounts import AlgoRecord
from .replay import path_points

if TYPE_CHECKING:
    from .accounts import Account
    from .venue import SandboxVenue

VERSION = 1


def snapshot(venue: SandboxVenue) -> dict[str, Any]:
    replay = venue.replay
    series = {
        s.symbol: {"closed": s.closed, "partial": s.partial, "last": s.last, "updates": s.updates, "played": s.played}
        for s in replay.series
    }
    accounts = {}
    for key, acct in venue.accounts.items():
        accounts[key] = _account(acct)
    return {"version": VERSION, "clock": venue.market_clock.now_ms(), "replay": {"i": replay.i, "phase": replay.phase},
            "series": series, "accounts": accounts}


def _account(acct: Account) -> dict[str, Any]:
    algos = {
        str(aid): {"actual_id": r.actual_id, "trigger_time": r.trigger_time, "update_time": r.update_time,
                   "price_protect": r.price_protect}
        for aid, r in acct.algos.items()
    }  # fmt: skip
    return {**export_state(acct.exchange), "algos": algos, "next_actual_id": acct.next_actual_id}


def save(venue: SandboxVenue, path: Path) -> None:
    """Write the state atomically (temporary file in the same folder, then rename)."""
    data = json.dumps(snapshot(venue), separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def restore(venue: SandboxVenue, path: Path) -> None:
    data = json.loads(path.read_text())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported state version {data.get('version')!r}")
    replay = venue.replay
    replay.i = int(data["replay"]["i"])
    replay.phase = int(data["replay"]["phase"])
    for s in replay.series:
        saved = data["series"].get(s.symbol)
        if saved is None:
            continue
        s.closed, s.partial, s.last = saved["closed"], saved["partial"], saved["last"]
        s.updates, s.played = saved["updates"], saved["played"]
        if s.partial is not None and s.closed < len(s.frame):
            row, f = s.closed, s.frame
            replay._paths[s.symbol] = path_points(
                float(f.open[row]), float(f.high[row]), float(f.low[row]), float(f.close[row]), replay.k, s.tick
            )
    venue.market_clock.advance_to(int(data["clock"]))
    for key, saved in data["accounts"].items():
        acct = venue.accounts.get(key)
        if acct is not None:
            _restore_account(acct, saved)


def _restore_account(acct: Account, saved: dict[str, Any]) -> None:
    import_state(acct.exchange, saved)
    for aid, r in saved["algos"].items():
        sim = order_by_id(acct.exchange, int(aid))
        if sim is None:
            continue
        rec = AlgoRecord(sim, bool(r["price_protect"]))
        rec.actual_id, rec.trigger_time, rec.update_time = int(r["actual_id"]), int(r["trigger_time"]), int(
            r["update_time"])
        acct.algos[sim.order_id] = rec
        if rec.actual_id:
            acct.actual[rec.actual_id] = rec
    acct.next_actual_id = int(saved["next_actual_id"])
