"""What the ``--state`` file holds, as JSON-safe data: the *image* of a sandbox, and the records that change it.

An image (the snapshot line of the file) has the replay position and, per account (keyed by a digest of
its API key, never the key itself), the wallet, books, every order (with its algo record), trades,
income, the id counters and the *reserved* id ceilings. A record (every further line) carries only what
one unit of work changed, in the same shape; :func:`apply` merges it into an image. The exchange's own
part comes from :mod:`kinetic_empire.exchange.state`; :mod:`.durable` decides what to write and when.

Id ceilings: a restarted sandbox starts its order, trade and triggered-order ids at the reserved
ceiling, above any id the previous process could have handed out, so no id ever names two things.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exchange.state import export_state, id_counters, import_state, order_by_id, order_record
from .accounts import AlgoRecord
from .replay import path_points
from .statefile import VERSION, StateFileError, parse

if TYPE_CHECKING:
    from ..exchange.orders import SimOrder
    from .accounts import Account
    from .market import ReplayedKlines
    from .venue import SandboxVenue


def account_digest(api_key: str) -> str:
    """How the state file names an account: a digest, so the file never holds an API key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- records
def series_record(s: ReplayedKlines) -> list[Any]:
    return [s.closed, list(s.partial) if s.partial is not None else None, s.last, s.updates, s.played]


def replay_record(venue: SandboxVenue) -> dict[str, Any]:
    replay = venue.replay
    return {"i": replay.i, "phase": replay.phase, "clock": venue.market_clock.now_ms(), "played": venue.updates_played}


def replay_identity(venue: SandboxVenue) -> dict[str, Any]:
    """What a state file's replay position means only for: the same symbols, K and first kline."""
    return {"symbols": [s.symbol for s in venue.replay.series], "k": venue.replay.k,
            "start": venue.replay.start_time(), "shift": venue.time_shift}


def algo_record(rec: AlgoRecord | None) -> list[Any] | None:
    return None if rec is None else [rec.actual_id, rec.trigger_time, rec.update_time, rec.price_protect]


def full_order_record(acct: Account, sim: SimOrder) -> dict[str, Any]:
    out = order_record(sim)
    algo = algo_record(acct.algos.get(sim.order_id))
    if algo is not None:
        out["algo"] = algo
    return out


def account_modes(acct: Account) -> list[bool]:
    """The account-wide switches: [hedge mode, multi-assets margin, BNB fee burn]."""
    return [acct.hedge, acct.multi_assets, acct.fee_burn]


def account_ids(acct: Account) -> dict[str, int]:
    order, trade = id_counters(acct.exchange)
    return {"order": order, "trade": trade, "actual": acct.next_actual_id}


# ------------------------------------------------------------------------------------------- image
def image_of(venue: SandboxVenue, seq: int, reserved: dict[str, dict[str, int]],
             orphans: dict[str, Any]) -> dict[str, Any]:
    """The whole state as a snapshot line (``orphans``: accounts in the file without a key this run)."""
    replay = {**replay_identity(venue), **replay_record(venue),
              "series": {s.symbol: series_record(s) for s in venue.replay.series}}
    accounts = dict(orphans)
    for key, acct in venue.accounts.items():
        digest = account_digest(key)
        ex = export_state(acct.exchange)
        accounts[digest] = {
            "wallet": ex["wallet"], "books": ex["books"],
            "orders": {str(o["order_id"]): o for o in ex["orders"]},
            "trades": ex["trades"], "income": ex["income"], "ids": account_ids(acct),
            "reserved": reserved.get(digest, account_ids(acct)),
        }
        if any(account_modes(acct)):  # absent: the defaults (older files have no modes either)
            accounts[digest]["modes"] = account_modes(acct)
        for rec in acct.algos.values():
            accounts[digest]["orders"][str(rec.algo_id)]["algo"] = algo_record(rec)
    return {"version": VERSION, "seq": seq, "replay": replay, "accounts": accounts}


def apply(image: dict[str, Any], record: dict[str, Any]) -> None:
    """Merge one change record into an image (in place)."""
    image["seq"] = record["seq"]
    replay = record.get("replay")
    if replay is not None:
        target = image["replay"]
        for name, value in replay.items():
            if name == "series":
                target["series"].update(value)
            else:
                target[name] = value
    for digest, change in record.get("accounts", {}).items():
        acct = image["accounts"].setdefault(digest, {"wallet": "0", "books": {}, "orders": {}, "trades": [],
                                                     "income": [], "ids": {}, "reserved": {}})
        if "wallet" in change:
            acct["wallet"] = change["wallet"]
        if "modes" in change:
            acct["modes"] = change["modes"]
        for name in ("books", "orders", "ids", "reserved"):
            acct[name].update(change.get(name, {}))
        acct["trades"].extend(change.get("trades", ()))
        acct["income"].extend(change.get("income", ()))


def from_v1(doc: dict[str, Any], venue: SandboxVenue, path: Path) -> dict[str, Any]:
    """A version-1 file (periodic JSON snapshot, accounts keyed by API key) as a version-2 image."""
    if venue.time_shift:
        raise StateFileError(f"{path}: a version-1 state file cannot resume a --time-origin now replay (it did "
                             "not record the time shift)")
    symbols = [s.symbol for s in venue.replay.series]
    try:
        return _from_v1(doc, venue, symbols, path)
    except StateFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"{path}: version-1 state file is incomplete or damaged ({exc!r}); "
                             "it was left as it is") from None


def _from_v1(doc: dict[str, Any], venue: SandboxVenue, symbols: list[str], path: Path) -> dict[str, Any]:
    if sorted(doc["series"]) != sorted(symbols):
        raise StateFileError(f"{path}: saved for symbols {sorted(doc['series'])}, this run has {symbols}; use "
                             "the same --data/--symbols or another --state file")
    accounts = {}
    for key, acct in doc["accounts"].items():
        orders = {str(o["order_id"]): dict(o) for o in acct["orders"]}
        for aid, r in acct.get("algos", {}).items():
            if aid in orders:
                orders[aid]["algo"] = [int(r["actual_id"]), int(r["trigger_time"]), int(r["update_time"]),
                                       bool(r["price_protect"])]
        ids = {"order": int(acct["next_order_id"]), "trade": int(acct["next_trade_id"]),
               "actual": int(acct["next_actual_id"])}
        accounts[account_digest(key)] = {"wallet": acct["wallet"], "books": acct["books"], "orders": orders,
                                         "trades": acct["trades"], "income": acct["income"], "ids": ids,
                                         "reserved": dict(ids)}
    replay = {**replay_identity(venue), "i": int(doc["replay"]["i"]), "phase": int(doc["replay"]["phase"]),
              "clock": int(doc["clock"]), "played": 0,
              "series": {sym: [s["closed"], s["partial"], s["last"], s["updates"], s["played"]]
                         for sym, s in doc["series"].items()}}
    return {"version": VERSION, "seq": 0, "replay": replay, "accounts": accounts}


# ------------------------------------------------------------------------------------------- restore
def check_replay(image: dict[str, Any], venue: SandboxVenue, path: Path) -> None:
    saved, now = image["replay"], replay_identity(venue)
    for name, what in (("symbols", "symbols"), ("k", "updates per kline"), ("start", "first kline (ms)")):
        if saved.get(name) != now[name]:
            raise StateFileError(f"{path}: saved for {what} {saved.get(name)!r}, this run has {now[name]!r}; use "
                                 "the same --data/--symbols/--start/--updates-per-kline or another --state file")


def restore(venue: SandboxVenue, image: dict[str, Any], path: Path) -> dict[str, Any]:
    """Put an image into a freshly built venue; returns the image's accounts that have no key this run."""
    check_replay(image, venue, path)
    saved = image["replay"]
    replay = venue.replay
    replay.i, replay.phase = int(saved["i"]), int(saved["phase"])
    for s in replay.series:
        s.closed, partial, s.last, s.updates, s.played = saved["series"][s.symbol]
        s.partial = list(partial) if partial is not None else None
        if s.partial is not None and s.closed < len(s.frame):
            row, f = s.closed, s.frame
            replay._paths[s.symbol] = path_points(
                float(f.open[row]), float(f.high[row]), float(f.low[row]), float(f.close[row]), replay.k, s.tick
            )
    venue.market_clock.advance_to(int(saved["clock"]))
    venue.updates_played = int(saved.get("played", 0))
    last = {s.symbol: s.last for s in replay.series}
    orphans = dict(image["accounts"])
    for key, acct in venue.accounts.items():
        data = orphans.pop(account_digest(key), None)
        if data is not None:
            _restore_account(acct, data, last)
    return orphans


def _restore_account(acct: Account, data: dict[str, Any], last: dict[str, float]) -> None:
    ids, reserved = data["ids"], data.get("reserved", {})
    # Start every id counter at its reserved ceiling: above anything the previous process handed out.
    start = {name: max(int(ids[name]), int(reserved.get(name, 0))) for name in ("order", "trade", "actual")}
    books = {sym: {**b, "last": last.get(sym, b["last"])} for sym, b in data["books"].items()}
    orders = sorted(data["orders"].values(), key=lambda o: int(o["order_id"]))
    import_state(acct.exchange, {"wallet": data["wallet"], "books": books, "orders": orders,
                                 "trades": data["trades"], "income": data["income"],
                                 "next_order_id": start["order"], "next_trade_id": start["trade"]})
    for item in orders:
        algo = item.get("algo")
        sim = order_by_id(acct.exchange, int(item["order_id"]))
        if algo is None or sim is None:
            continue
        rec = AlgoRecord(sim, bool(algo[3]))
        rec.actual_id, rec.trigger_time, rec.update_time = int(algo[0]), int(algo[1]), int(algo[2])
        acct.algos[sim.order_id] = rec
        if rec.actual_id:
            acct.actual[rec.actual_id] = rec
    acct.next_actual_id = start["actual"]
    acct.hedge, acct.multi_assets, acct.fee_burn = (bool(m) for m in data.get("modes", (False, False, False)))
    acct.dirty.clear()


def read_image(path: Path) -> dict[str, Any] | None:
    """The state a (version-2) file holds now, without locking it: for tests and inspection tools."""
    loaded = parse(path, path.read_bytes())
    if loaded.snapshot is None:
        return None
    image = loaded.snapshot
    for record in loaded.records:
        apply(image, record)
    return image
