"""The Binance adapter's pure parts: signing, error mapping, keys, wire shapes, the journal codec, config."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.binance import errors as E
from kinetic_empire.binance.signing import Credentials, encode, load_credentials, parse_dotenv, sign, signed_query
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.binance.venues import is_production
from kinetic_empire.binance.wire import order_params, order_status
from kinetic_empire.core import events as ev
from kinetic_empire.core.enums import (
    BalanceReason,
    IntentAction,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    WorkingType,
)
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import EVENT_TYPES, Journal, decode, read_events, read_meta
from kinetic_empire.live.journal import encode as encode_event
from kinetic_empire.logs import redact

SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"


def test_signature_matches_binance_test_vector() -> None:
    text = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
            "&timestamp=1591702613943")
    assert sign(SECRET, text) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    q = signed_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": Decimal("1"),
                      "price": Decimal("9000"), "timeInForce": "GTC"}, SECRET, 1591702613943, 5000)
    assert q.endswith("&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9")


def test_wire_values_are_plain() -> None:
    assert encode({"q": Decimal("1E-5"), "r": True, "s": None, "t": Side.SELL}) == "q=0.00001&r=true&t=SELL"


@pytest.mark.parametrize(("status", "code", "kind"), [
    (400, -2019, E.RejectedError), (400, -4164, E.RejectedError), (400, -1111, E.RejectedError),
    (400, -2011, E.UnknownOrderError), (400, -2013, E.UnknownOrderError), (400, -4116, E.DuplicateOrderError),
    (400, -4046, E.NoChangeError), (400, -1125, E.ListenKeyError), (401, -2015, E.AuthError),
    (401, -2014, E.AuthError), (400, -1022, E.AuthError), (400, -1021, E.TimestampError),
    (429, -1003, E.RateLimitError), (418, -1003, E.RateLimitError), (429, -1015, E.RateLimitError),
    (503, -1001, E.UnavailableError), (503, -1008, E.UnavailableError), (503, -1000, E.UnknownStatusError),
    (408, -1007, E.UnknownStatusError), (500, -1000, E.UnknownStatusError),
])
def test_error_codes_map_to_what_the_engine_may_do(status: int, code: int, kind: type) -> None:
    body = json.dumps({"code": code, "msg": "m"}).encode()
    err = E.error_from_reply(status, body, {"Retry-After": "7"}, "POST /fapi/v1/order")
    assert type(err) is kind and err.code == code and "POST /fapi/v1/order" in str(err)
    if isinstance(err, E.RateLimitError):
        assert err.retry_after == 7.0


def test_non_json_replies() -> None:
    assert isinstance(E.error_from_reply(502, b"<html>bad gateway</html>", {}, "x"), E.UnknownStatusError)
    assert isinstance(E.error_from_reply(403, b"<html>WAF</html>", {}, "x"), E.VenueResponseError)
    assert isinstance(E.error_from_reply(503, b'{"code":-1,"msg":"Service Unavailable."}', {}, "x"),
                      E.UnavailableError)


def test_dotenv_and_environment(tmp_path: Path) -> None:
    text = ("# keys\nexport KINETIC_BINANCE_API_KEY='abcdefgh1234'\n"
            "KINETIC_BINANCE_API_SECRET=\"s3cr3tvalue99\"\nX=1 # c\n")
    assert parse_dotenv(text)["X"] == "1"
    (tmp_path / ".env").write_text(text)
    creds = load_credentials({}, tmp_path / ".env")
    assert creds is not None and creds.api_key == "abcdefgh1234" and creds.api_secret == "s3cr3tvalue99"
    assert "s3cr3tvalue99" not in repr(creds) and "abcdefgh1234" not in str(creds)
    assert redact("sig s3cr3tvalue99 key abcdefgh1234") == "sig *** key ***"  # registered on creation
    env = {"KINETIC_BINANCE_API_KEY": "envkey123456", "KINETIC_BINANCE_API_SECRET": "envsecret123456"}
    assert load_credentials(env, tmp_path / ".env") == Credentials("envkey123456", "envsecret123456", "environment")
    assert load_credentials({}, tmp_path / "missing") is None


def test_production_detection() -> None:
    assert is_production("https://fapi.binance.com") and is_production("wss://fstream.binance.com/market")
    assert not is_production("https://demo-fapi.binance.com") and not is_production("http://127.0.0.1:8080")
    assert not is_production("wss://fstream.binancefuture.com")


def test_order_params_plain_and_algo() -> None:
    base = dict(intent_id="i", strategy_id="s", symbol="FILUSDT", ts_event=0, ts_init=0)
    path, p = order_params(ev.OrderRequest(client_order_id="i-e", side=Side.BUY, order_type=OrderType.LIMIT,
                                           quantity=Decimal("10"), price=Decimal("4.1"),
                                           time_in_force=TimeInForce.GTC, **base))
    assert path == "/fapi/v1/order" and p["newClientOrderId"] == "i-e" and p["timeInForce"] == "GTC"
    path, p = order_params(ev.OrderRequest(client_order_id="i-sl", side=Side.SELL, order_type=OrderType.STOP_MARKET,
                                           quantity=None, trigger_price=Decimal("3.9"), close_position=True,
                                           working_type=WorkingType.MARK_PRICE, **base))
    assert path == "/fapi/v1/algoOrder"
    assert p == {"algoType": "CONDITIONAL", "symbol": "FILUSDT", "side": "SELL", "type": "STOP_MARKET",
                 "triggerPrice": Decimal("3.9"), "workingType": "MARK_PRICE", "clientAlgoId": "i-sl",
                 "closePosition": "true"}
    assert order_status({"algoStatus": "FINISHED"}) is OrderStatus.FILLED


def test_translator_says_each_fact_once() -> None:
    out: list[object] = []
    tr = UserTranslator(out.append, lambda: 5, lambda s: 3)
    fill = {"e": "ORDER_TRADE_UPDATE", "E": 10, "T": 10, "o": {
        "s": "FILUSDT", "c": "a-e", "S": "BUY", "o": "MARKET", "ot": "MARKET", "q": "10", "p": "0", "x": "TRADE",
        "X": "FILLED", "i": 7, "l": "10", "L": "4.2", "n": "0.02", "N": "USDT", "t": 99, "m": False, "R": False,
        "rp": "0"}}
    account = {"e": "ACCOUNT_UPDATE", "E": 10, "T": 10, "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "99.98",
               "cw": "99.98", "bc": "0"}], "P": [{"s": "FILUSDT", "pa": "10", "ep": "4.2", "ps": "BOTH"}]}}
    for _ in range(2):
        tr.on_message(fill)
        tr.on_message(account)
    tr.trades_snapshot(tr.orders["a-e"], [{"symbol": "FILUSDT", "id": 99, "orderId": 7, "side": "BUY", "qty": "10",
                                          "price": "4.2", "commission": "0.02", "realizedPnl": "0", "maker": False,
                                          "time": 10}], Decimal(10))
    kinds = [type(e).__name__ for e in out]
    assert kinds == ["OrderFilled", "PositionChanged", "BalanceChanged"]
    assert out[1] == ev.PositionChanged(symbol="FILUSDT", quantity=Decimal(10), entry_price=Decimal("4.2"),
                                        leverage=3, ts_event=10, ts_init=5)


def _sample(cls: type) -> object:
    values: dict[str, object] = {}
    samples = {str: "s", int: 1, float: 1.5, bool: True, Decimal: Decimal("1.25")}
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        t = args[0] if args and typing.get_origin(hint) is not tuple and typing.get_origin(hint) is not dict else hint
        if typing.get_origin(hint) is tuple:
            values[f.name] = ("a", "b")
        elif typing.get_origin(hint) is dict:
            values[f.name] = {"k": [1, "x"]}
        elif t in samples:
            values[f.name] = samples[t]
        else:
            values[f.name] = next(iter(t))  # an enum's first member
    return cls(**values)


def test_journal_round_trips_every_event_type(tmp_path: Path) -> None:
    from kinetic_empire.core.bus import EventBus

    samples = [_sample(cls) for cls in EVENT_TYPES]
    for e in samples:
        assert decode(type(e).__name__, json.loads(json.dumps(encode_event(e)))) == e
    j = Journal(tmp_path / "j.sqlite")
    bus = EventBus()
    j.attach(bus)
    j.set_meta(schema_version=1, run_id="r", leverage={"FILUSDT": 2})
    for e in samples:
        bus.publish(e)
    j.close()
    assert list(read_events(tmp_path / "j.sqlite")) == samples
    assert read_meta(tmp_path / "j.sqlite") == {"schema_version": 1, "run_id": "r", "leverage": {"FILUSDT": 2}}
    assert {IntentAction.OPEN_LONG, TradingState.ACTIVE, BalanceReason.ORDER}  # enums used above


def test_live_config_is_strict_and_never_takes_keys() -> None:
    ok = {"strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"]}]}
    cfg = LiveConfig.from_mapping(ok)
    assert cfg.venue == "sandbox" and cfg.resolve_venue() is None
    with pytest.raises(ConfigError, match=r"live\.windw"):
        LiveConfig.from_mapping({**ok, "live": {"windw": 3}})
    with pytest.raises(ConfigError, match="never read from YAML"):
        LiveConfig.from_mapping({**ok, "live": {"api_secret": "x"}})
    with pytest.raises(ConfigError, match=r"live\.venue"):
        LiveConfig.from_mapping({**ok, "live": {"venue": "binance"}})
    demo = LiveConfig.from_mapping({**ok, "live": {"venue": "binance-demo"}}).resolve_venue()
    assert demo is not None and demo.rest_url == "https://demo-fapi.binance.com"
    assert demo.user_stream_url("k/y") == "wss://fstream.binancefuture.com/private/ws?listenKey=k%2Fy"
    for path in ("config/live.sandbox.yaml", "config/live.demo.yaml"):
        LiveConfig.load(Path(__file__).parents[2] / path)


def test_a_triggered_algo_orders_fill_belongs_to_the_algo_whatever_arrives_first() -> None:
    for algo_first in (True, False):
        out: list[object] = []
        tr = UserTranslator(out.append, lambda: 5, lambda s: 3)
        tr.expect(ev.OrderRequest(client_order_id="x-sl", intent_id="x", strategy_id="s", symbol="DOGEUSDT",
                                  side=Side.BUY, order_type=OrderType.STOP_MARKET, quantity=Decimal(38),
                                  trigger_price=Decimal("0.13855"), ts_event=0, ts_init=0))
        # the real Binance payloads (reference 8.3 captures), with our client id
        algo = {"e": "ALGO_UPDATE", "T": 1765431097030, "E": 1765431097037, "o": {
            "caid": "x-sl", "aid": 1000000033225453, "at": "CONDITIONAL", "o": "STOP_MARKET", "s": "DOGEUSDT",
            "S": "BUY", "ps": "BOTH", "f": "GTC", "q": "38", "X": "TRIGGERED", "ai": "88937381063", "tp": "0.13855",
            "p": "0", "cp": False, "R": False, "tt": 1765431097019}}
        trade = {"e": "ORDER_TRADE_UPDATE", "E": 1765431097031, "T": 1765431097031, "o": {
            "s": "DOGEUSDT", "c": "autoGenerated123", "S": "BUY", "o": "MARKET", "ot": "STOP_MARKET", "q": "38",
            "x": "TRADE", "X": "FILLED", "i": 88937381063, "l": "38", "L": "0.13856", "n": "0.0026", "t": 5,
            "m": False, "R": False, "rp": "0"}}
        for msg in ([algo, trade] if algo_first else [trade, algo]):
            tr.on_message(msg)
        fills = [e for e in out if isinstance(e, ev.OrderFilled)]
        assert [(f.client_order_id, f.quantity) for f in fills] == [("x-sl", Decimal(38))]
