"""trades.csv and orders.csv: ISO-8601 UTC times and durations next to the ms columns, numbers rounded
to the symbol's precision, key columns first."""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D

import pandas as pd
import pytest

from kinetic_empire.core.enums import PositionSide
from kinetic_empire.portfolio import OrderRecord, TradeRecord
from kinetic_empire.report.csvfiles import ORDER_COLUMNS, TRADE_COLUMNS, iso_duration, iso_time, orders_csv, trades_csv

T = 1_691_071_200_000  # 2023-08-03 14:00 UTC


def trade(**kw) -> TradeRecord:
    base = dict(
        trade_id=7, strategy_id="ema_cross", symbol="FILUSDT", side=PositionSide.LONG, quantity=D("477.2"),
        entry_time=T, entry_price=D("4.21812345678"), exit_time=T + 93_601_234, exit_price=D("4.163"),
        gross_pnl=D("1067.928799999999999999999999"), fees=D("2.0123456789"), funding=D("-0.000000004"),
        net_pnl=D("1065.916454321099999999999999"), return_pct=D("1.2345678"), exit_reason="signal",
        duration_ms=93_601_234, entry_tag="breakout up", exit_tag="exit channel",
    )  # fmt: skip
    return TradeRecord(**(base | kw))


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_iso_times_and_durations_parse_back() -> None:
    assert iso_time(T) == "2023-08-03T14:00:00.000Z" and iso_time(T + 59_999) == "2023-08-03T14:00:59.999Z"
    assert pd.Timestamp(iso_time(T + 1)).value // 1_000_000 == T + 1
    for ms in (0, 500, 61_000, 93_601_234, 40 * 86_400_000, -5_000):
        text = iso_duration(ms)
        assert text.startswith(("P", "-P")) and pd.Timedelta(text) == pd.Timedelta(milliseconds=ms), text
    assert iso_duration(93_601_234) == "P1DT2H0M1.234S"


def test_trades_are_rounded_to_the_symbols_precision(rules) -> None:
    fil = rules["FILUSDT"]  # tick 0.001, step 0.1
    (row,) = rows(trades_csv([trade()], {"FILUSDT": fil}))
    assert list(row) == list(TRADE_COLUMNS)
    assert row["gross_pnl"] == "1067.9288"  # not 1067.928799999999999999999999
    assert row["net_pnl"] == "1065.91645432" and row["fees"] == "2.01234568" and row["funding"] == "0"
    assert row["quantity"] == "477.2"
    assert row["entry_price"] == "4.21812"  # an average of fills: the tick's 3 decimals and 2 more
    assert row["exit_price"] == "4.163" and row["return_pct"] == "1.2346"
    assert (row["entry_time_utc"], row["exit_time_utc"]) == ("2023-08-03T14:00:00.000Z", "2023-08-04T16:00:01.234Z")
    assert row["duration"] == "P1DT2H0M1.234S" and row["duration_ms"] == "93601234"
    assert (row["entry_time"], row["exit_time"]) == (str(T), str(T + 93_601_234))  # ms columns kept
    assert (row["entry_tag"], row["exit_tag"], row["side"]) == ("breakout up", "exit channel", "LONG")
    # without rules (a symbol the caller has none for): 10 decimals, trailing zeros dropped
    (plain,) = rows(trades_csv([trade()]))
    assert plain["gross_pnl"] == "1067.9288" and plain["entry_price"] == "4.2181234568"


def test_key_columns_come_first() -> None:
    assert TRADE_COLUMNS[:8] == ("trade_id", "strategy_id", "symbol", "side", "entry_tag", "entry_time_utc",
                                 "exit_time_utc", "duration")  # fmt: skip
    assert ORDER_COLUMNS[0] == "time_utc" and ORDER_COLUMNS[-1] == "ts"


def test_orders_are_rounded_and_tagged(rules) -> None:
    order = OrderRecord(ts=T, client_order_id="b1-e", strategy_id="s", symbol="NEARUSDT", side="BUY",
                        order_type="MARKET", quantity=D("3451.000000000000001"), price=D("1.38000000000001"),
                        status="FILLED", reason="signal", tag="oversold")  # fmt: skip
    (row,) = rows(orders_csv([order], rules))
    assert list(row) == list(ORDER_COLUMNS)
    assert (row["quantity"], row["price"], row["tag"]) == ("3451", "1.38", "oversold")
    assert row["time_utc"] == "2023-08-03T14:00:00.000Z" and row["ts"] == str(T)
    empty = orders_csv([], rules).decode()
    assert empty == ",".join(ORDER_COLUMNS) + "\n"


@pytest.mark.parametrize("value", ["0.1", "1E+1", "0"])
def test_rounding_never_writes_an_exponent(value: str) -> None:
    (row,) = rows(trades_csv([trade(net_pnl=D(value))]))
    assert "E" not in row["net_pnl"].upper()
