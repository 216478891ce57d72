"""A generator of broken inputs, by class, for the bad-input suite (tests/unit/test_bad_inputs.py).

Each :class:`BadInput` builds its own world in a fresh folder (a store, a run, a config file), names the
``kinetic`` command line to run against it, and says what the one error line must contain. The suite
then checks the same promises for every case: a non-zero exit, one ``error:`` line naming the file,
row, key or value, no traceback, nothing half-written, and every file that existed before unchanged.

Classes: kline files (every validation rule, renamed months, spot data), stores (corrupt partitions,
a file where a folder belongs), configs (YAML syntax, duplicates, unknown keys, impossible values,
dates), command-line flags, journals (truncated, overwritten, emptied, junk payloads).
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SAMPLE = REPO / "backtests" / "data" / "futures" / "um" / "monthly" / "klines"
DAY_FILE = TESTS / "data" / "FILUSDT-1m-2023-08-01.csv"

Setup = Callable[[Path], list[str]]
"""Builds the case's world under a folder; returns the argv for ``kinetic``."""


@dataclass(frozen=True)
class BadInput:
    kind: str  # the class of input: data, store, config, flag, journal
    name: str
    setup: Setup
    message: str  # a regular expression the error line must match

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


# ------------------------------------------------------------------------------------------- helpers


def _store_with_a_day(root: Path) -> Path:
    """A store holding one day of FILUSDT 1m (imported through the CLI's own code)."""
    from kinetic_empire.download.importer import import_paths

    store = root / "store"
    import_paths([DAY_FILE], store, progress=False)
    return store


def _config(root: Path, text: str, name: str = "bad.yaml") -> Path:
    path = root / name
    path.write_text(text)
    return path


_GOOD = """backtest:
  data: {data}
  start: 2023-08-03
  end: 2023-08-20
strategies:
  - name: ema_cross
    symbols: [FILUSDT]
    timeframe: 1h
"""


def _good(root: Path) -> str:
    return _GOOD.format(data=REPO / "backtests" / "data")


def _run_with_journal(root: Path, damage: Callable[[Path], None]) -> list[str]:
    from kinetic_empire.core import events as ev
    from kinetic_empire.core.enums import BalanceReason
    from kinetic_empire.live.journal import Journal

    folder = root / "runs" / "r1"
    journal = Journal(folder / "journal.sqlite")
    try:
        journal.set_meta(run_id="r1", venue="sandbox")
        for i in range(40):
            journal.record(ev.BalanceChanged(asset="USDT", wallet_balance=Decimal(1000 + i), change=Decimal(1),
                                             reason=BalanceReason.ORDER, ts_event=i, ts_init=i))
        journal.flush()
    finally:
        journal.close()
    damage(folder / "journal.sqlite")
    return ["report", "r1", "--runs-dir", str(root / "runs")]


def _sql(statement: str) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        db = sqlite3.connect(path)
        db.execute(statement)
        db.commit()
        db.close()

    return run


def _cut(fraction: float) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return run


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(16, 100):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _month_rows_renamed(root: Path) -> list[str]:
    with zipfile.ZipFile(SAMPLE / "FILUSDT" / "1m" / "FILUSDT-1m-2023-08.zip") as z:
        text = z.read(z.namelist()[0]).decode()
    target = root / "in" / "FILUSDT-1m-2023-09.csv"
    target.parent.mkdir(parents=True)
    target.write_text(text)
    return ["data", "import", str(target), "--data-dir", str(_store_with_a_day(root)), "--no-progress"]


def _spot_copy(root: Path) -> list[str]:
    folder = root / "data" / "spot" / "daily" / "klines"
    folder.mkdir(parents=True)
    shutil.copy(TESTS / "data" / "spot" / "ADABTC-1m-2021-11-27.csv", folder)
    return ["data", "import", str(root / "data"), "--data-dir", str(_store_with_a_day(root)), "--no-progress"]


def _import_bad(name: str) -> Setup:
    def setup(root: Path) -> list[str]:
        return ["data", "import", str(TESTS / "data" / "bad" / name), "--data-dir", str(_store_with_a_day(root)),
                "--no-progress"]

    return setup


def _corrupt_partition(root: Path) -> list[str]:
    store = _store_with_a_day(root)
    part = store / "klines" / "FILUSDT" / "1m" / "2023-08.parquet"
    part.write_bytes(part.read_bytes()[:200])
    return ["data", "list", "--data-dir", str(store)]


def _backtest(text: Callable[[Path], str]) -> Setup:
    def setup(root: Path) -> list[str]:
        return ["backtest", "--config", str(_config(root, text(root))), "--no-progress",
                "--results-dir", str(root / "results")]

    return setup


def _failing_live_run(root: Path) -> list[str]:
    """A paper run whose config passes the schema but fails at start-up: it must leave no run folder."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "live.sandbox.yaml").read_text())
    cfg.setdefault("risk", {})["default_leverage"] = 100
    cfg["live"]["runs_dir"] = str(root / "runs")
    cfg["sandbox"]["data"] = str(REPO / "backtests" / "data")
    path = root / "live.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return ["run", "--config", str(path), "--duration", "5", "--no-api", "--no-status"]


# ------------------------------------------------------------------------------------------- the cases


def cases() -> Iterator[BadInput]:
    rules = {
        "columns": r"\[columns\]", "duplicate": r"\[duplicate\]", "garbage": r"row \d+: \[",
        "high_low": r"row 80: \[high_low\]", "html": r"\[format\]", "interval": r"\[interval\]",
        "misaligned": r"\[(misaligned|interval)\]", "nan": r"\[(nan|value|garbage)\]", "order": r"\[order\]",
    }
    for name, msg in rules.items():
        yield BadInput("data", f"kline file breaking {name}", _import_bad(f"FILUSDT-1m-2023-08-01.{name}.csv"),
                       rf"FILUSDT-1m-2023-08-01\.{name}\.csv.*{msg}")
    yield BadInput("data", "truncated zip", _import_bad("FILUSDT-1m-2023-08-01.truncated.zip"),
                   r"truncated\.zip: \[format\] not a readable zip")
    yield BadInput("data", "rows of another month", _month_rows_renamed,
                   r"FILUSDT-1m-2023-09\.csv: \[period\] holds a kline at 2023-08-01")
    yield BadInput("data", "spot data", _spot_copy, r"ADABTC-1m-2021-11-27\.csv: \[market\] a spot file")

    yield BadInput("store", "corrupt partition", _corrupt_partition,
                   r"2023-08\.parquet: \[store\] unreadable partition")
    yield BadInput("store", "data dir is a file",
                   lambda root: ["data", "import", str(DAY_FILE), "--data-dir", str(_config(root, "x", "afile"))],
                   r"--data-dir .*afile: is a file, not a folder")
    yield BadInput("store", "list of a missing store", lambda root: ["data", "list", "--data-dir", str(root / "no")],
                   r"--data-dir .*/no: no such folder")

    yield BadInput("config", "yaml syntax", _backtest(lambda r: "backtest: [unclosed\n"),
                   r"bad\.yaml: line \d+, column \d+: invalid YAML")
    yield BadInput("config", "duplicate key", _backtest(lambda r: _good(r) + "backtest:\n  start: 2023-08-05\n"),
                   r"bad\.yaml: line 9, column 1: invalid YAML: duplicate key 'backtest' \(first given on line 1\)")
    yield BadInput("config", "unknown key", _backtest(lambda r: _good(r).replace("  end:", "  ends:")),
                   r"bad\.yaml: backtest\.ends: unknown key")
    yield BadInput("config", "bare number date",
                   _backtest(lambda r: _good(r).replace("start: 2023-08-03", "start: 2023")),
                   r"backtest\.start: a bare number 2023 is not a date")
    yield BadInput("config", "impossible date",
                   _backtest(lambda r: _good(r).replace("start: 2023-08-03", "start: '2023-09-31'")),
                   r"backtest\.start: not a date: '2023-09-31'")
    yield BadInput("config", "unknown strategy",
                   _backtest(lambda r: _good(r).replace("name: ema_cross", "name: ema_crossing")),
                   r"ema_crossing")
    yield BadInput("config", "risk override for no strategy",
                   _backtest(lambda r: _good(r) + "risk:\n  strategies:\n    ema_crosss: {sizing: {method: "
                                                  "fixed_notional, notional: 200}}\n"),
                   r"risk\.strategies\.ema_crosss: no strategy named 'ema_crosss' exists")
    yield BadInput("config", "API key in YAML", _backtest(lambda r: _good(r) + "api_key: abc\n"),
                   r"api_key: API keys are never read from YAML")
    yield BadInput("config", "leverage above the maximum",
                   _backtest(lambda r: _good(r) + "risk:\n  default_leverage: 500\n"),
                   r"risk\.default_leverage")
    yield BadInput("config", "missing config file",
                   lambda root: ["backtest", "--config", str(root / "nothere.yaml"), "--no-progress"],
                   r"nothere\.yaml.*cannot read config")

    yield BadInput("flag", "impossible --start",
                   lambda root: ["backtest", "--config", str(REPO / "config" / "backtest.example.yaml"), "--start",
                                 "2023-09-31", "--no-progress"], r"--start: not a date")
    yield BadInput("flag", "download symbol with a path",
                   lambda root: ["download", "--symbols", "../../X", "--start", "2023-08-01", "--data-dir",
                                 str(root / "store"), "--source", "archive"], r"'\.\./\.\./X' is not a symbol")
    yield BadInput("flag", "download inverted dates",
                   lambda root: ["download", "--symbols", "FILUSDT", "--start", "2023-09-01", "--end", "2023-08-01",
                                 "--data-dir", str(root / "store"), "--source", "archive"],
                   r"--end 2023-08-01 is not after --start 2023-09-01")
    yield BadInput("flag", "download unknown timeframe",
                   lambda root: ["download", "--symbols", "FILUSDT", "--timeframes", "2m", "--start", "2023-08-01",
                                 "--data-dir", str(root / "store"), "--source", "archive"],
                   r"timeframe '2m' is not offered")
    example = str(REPO / "config" / "backtest.example.yaml")
    yield BadInput("flag", "empty --symbols", lambda root: ["backtest", "--config", example, "--symbols", "",
                                                            "--no-progress", "--no-save"],
                   r"--symbols: give at least one symbol")
    yield BadInput("flag", "unknown --symbols", lambda root: ["backtest", "--config", example, "--symbols", "FOOUSDT",
                                                              "--no-progress", "--no-save"],
                   r"--symbols: unknown symbol FOOUSDT")
    yield BadInput("flag", "--results-dir a file",
                   lambda root: ["backtest", "--config", example, "--results-dir", str(_config(root, "x", "afile")),
                                 "--no-progress"], r"--results-dir .*afile: is a file")
    yield BadInput("flag", "window outside the data",
                   lambda root: ["backtest", "--config", example, "--data", str(REPO / "backtests" / "data"), "--start",
                                 "2030-01-01", "--end", "2031-01-01", "--no-progress", "--no-save"],
                   r"\[window\] no FILUSDT 1h klines from 2030-01-01")
    yield BadInput("flag", "--start after the config's end",
                   lambda root: ["backtest", "--config", example, "--start", "2030-01-01", "--no-progress",
                                 "--no-save"],
                   r"--start: 2030-01-01 is not before the config's end")
    yield BadInput("flag", "negative --tolerance-pct", lambda root: ["compare", "x", "y", "--tolerance-pct", "-5"],
                   r"--tolerance-pct -5.0: must be between 0 and 100")
    for argv, message in ((["run", "--duration", "-5"], r"--duration -5.0: must be more than 0"),
                          (["run", "--reconcile-every", "-1"], r"--reconcile-every -1.0: must be 0"),
                          (["run", "--speed", "-1"], r"--speed -1.0: must be 0"),
                          (["doctor", "--timeout", "-1"], r"--timeout -1.0: must be more than 0"),
                          (["run", "--env-file", "nosuch.env"], r"--env-file nosuch.env: no such file")):
        yield BadInput("flag", " ".join(argv), lambda root, a=argv: list(a), message)  # type: ignore[misc]
    sandbox = {("--port", "99999"): r"--port 99999: must be between 0 and 65535",
               ("--error-executed-rate", "2"): r"a rate is a probability between 0 and 1",
               ("--latency-ms", "50", "10"): r"--latency-ms 50 10: give MIN MAX",
               ("--data", "/no/such"): r"--data /no/such: no such file or folder"}
    for extra, message in sandbox.items():
        yield BadInput("flag", "sandbox " + " ".join(extra), lambda root, e=extra: ["sandbox", *e], message)
    yield BadInput("flag", "sandbox --keys not JSON",
                   lambda root: ["sandbox", "--keys", str(_config(root, "{bad", "keys.json"))],
                   r"--keys .*keys\.json: not valid JSON")
    end = "  end: 2023-08-20\n"
    slip = "  slippage_bps: 5000\n"
    yield BadInput("config", "absurd slippage", _backtest(lambda r: _good(r).replace(end, end + slip)),
                   r"backtest\.slippage_bps: must be between 0 and 1000")
    huge = "  initial_balance: 12345678901234567890123456789012345678\n"
    yield BadInput("config", "38-digit balance", _backtest(lambda r: _good(r).replace(end, end + huge)),
                   r"backtest\.initial_balance: must be <= 1000000000000")
    yield BadInput("config", "live run that fails before trading", _failing_live_run,
                   r"risk\.default_leverage: leverage 100 above the maximum")
    yield BadInput("flag", "run id with a path",
                   lambda root: ["report", "../../x", "--runs-dir", str(root / "runs")], r"\.\./\.\./x")

    journals = {
        "truncated": _cut(0.3), "half": _cut(0.5), "header overwritten": _flip, "emptied": _cut(0),
        "junk payload": _sql("UPDATE events SET payload = '{\"asset\": 5, \"wallet_balance\": \"x\"}' WHERE seq = 3"),
        "payload not JSON": _sql("UPDATE events SET payload = 'not json' WHERE seq = 4"),
        "unknown event kind": _sql("UPDATE events SET kind = 'Bogus' WHERE seq = 5"),
        "events table dropped": _sql("DROP TABLE events"),
    }
    for name, damage in journals.items():
        yield BadInput("journal", name, lambda root, d=damage: _run_with_journal(root, d),  # type: ignore[misc]
                       r"journal .*journal\.sqlite")
