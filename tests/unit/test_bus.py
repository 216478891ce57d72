import inspect
from dataclasses import FrozenInstanceError, fields
from decimal import Decimal

import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import BalanceReason
from kinetic_empire.core.errors import HandlerError
from kinetic_empire.core.events import BalanceChanged, KlineClosed, new_kline


def _kline(symbol: str = "FILUSDT", tf: str = "1m") -> KlineClosed:
    return KlineClosed(
        symbol=symbol, timeframe=tf, open_time=0, open=1.0, high=2.0, low=0.5, close=1.5, volume=3.0,
        ts_event=59_999, ts_init=59_999,
    )  # fmt: skip


def test_handlers_run_in_subscription_order_and_topics_route():
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(KlineClosed, lambda e: seen.append("all-1"))
    bus.subscribe(KlineClosed, lambda e: seen.append("fil-1m"), topic=("FILUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda e: seen.append("near-1m"), topic=("NEARUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda e: seen.append("all-2"))
    bus.publish(_kline(), ("FILUSDT", "1m"))
    assert seen == ["all-1", "fil-1m", "all-2"]
    seen.clear()
    bus.publish(_kline("NEARUSDT"), ("NEARUSDT", "1m"))
    assert seen == ["all-1", "near-1m", "all-2"]


def test_nested_publish_is_depth_first():
    bus = EventBus()
    seen: list[str] = []

    def on_kline(e: KlineClosed) -> None:
        seen.append("kline")
        bus.publish(BalanceChanged(asset="USDT", wallet_balance=Decimal(1), change=Decimal(1),
                                   reason=BalanceReason.ORDER, ts_event=0, ts_init=0))  # fmt: skip
        seen.append("kline-after")

    bus.subscribe(KlineClosed, on_kline)
    bus.subscribe(KlineClosed, lambda e: seen.append("second"))
    bus.subscribe(BalanceChanged, lambda e: seen.append("balance"))
    bus.publish(_kline())
    assert seen == ["kline", "balance", "kline-after", "second"]


def test_failing_handler_stops_with_the_event_in_backtests():
    bus = EventBus()

    def broken(e: KlineClosed) -> None:
        raise ZeroDivisionError("boom")

    bus.subscribe(KlineClosed, broken)
    with pytest.raises(HandlerError) as info:
        bus.publish(_kline())
    assert "broken" in str(info.value) and "ZeroDivisionError" in str(info.value)
    assert info.value.event == _kline()


def test_failing_handler_is_reported_and_delivery_continues_live():
    errors: list[HandlerError] = []
    bus = EventBus(on_error=errors.append)
    seen: list[str] = []
    bus.subscribe(KlineClosed, lambda e: 1 / 0)
    bus.subscribe(KlineClosed, lambda e: seen.append("next"))
    bus.publish(_kline())
    assert seen == ["next"] and len(errors) == 1 and isinstance(errors[0].cause, ZeroDivisionError)


def test_unsubscribe_and_cache_invalidation():
    bus = EventBus()
    seen: list[int] = []

    def h(e: KlineClosed) -> None:
        seen.append(1)

    bus.subscribe(KlineClosed, h)
    bus.publish(_kline())
    bus.unsubscribe(KlineClosed, h)
    bus.publish(_kline())
    assert seen == [1]


def test_a_publisher_follows_subscription_changes():
    """A publisher resolves its route once but still reaches handlers subscribed after it was built."""
    bus = EventBus()
    seen: list[str] = []
    publish = bus.publisher(KlineClosed, ("FILUSDT", "1m"))
    publish(_kline())

    def first(e: KlineClosed) -> None:
        seen.append("first")

    bus.subscribe(KlineClosed, first, topic=("FILUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda e: seen.append("other topic"), topic=("NEARUSDT", "1m"))
    publish(_kline())
    bus.unsubscribe(KlineClosed, first, topic=("FILUSDT", "1m"))
    publish(_kline())
    assert seen == ["first"]


def test_subscribing_during_delivery_takes_effect_from_the_next_event():
    bus = EventBus()
    seen: list[str] = []

    def late(e: KlineClosed) -> None:
        seen.append("late")

    def subscriber(e: KlineClosed) -> None:
        seen.append("subscriber")
        if late not in bus.handlers(KlineClosed):
            bus.subscribe(KlineClosed, late)

    bus.subscribe(KlineClosed, subscriber)
    for publish in (bus.publish, bus.publisher(KlineClosed)):
        seen.clear()
        if late in bus.handlers(KlineClosed):
            bus.unsubscribe(KlineClosed, late)
        publish(_kline())
        publish(_kline())
        assert seen == ["subscriber", "subscriber", "late"]


def test_a_publisher_reports_failures_like_publish():
    errors: list[HandlerError] = []
    bus = EventBus(on_error=errors.append)
    seen: list[str] = []
    bus.subscribe(KlineClosed, lambda e: 1 / 0)
    bus.subscribe(KlineClosed, lambda e: seen.append("next"))
    bus.publisher(KlineClosed)(_kline())
    assert seen == ["next"] and len(errors) == 1
    strict = EventBus()
    strict.subscribe(KlineClosed, lambda e: 1 / 0)
    with pytest.raises(HandlerError):
        strict.publisher(KlineClosed)(_kline())


def test_new_kline_builds_the_same_frozen_event():
    made = new_kline("FILUSDT", "1m", 0, 1.0, 2.0, 0.5, 1.5, 3.0, 59_999, 59_999)
    assert type(made) is KlineClosed
    assert made == _kline() and hash(made) == hash(_kline())
    with pytest.raises(FrozenInstanceError):
        made.close = 2.0  # type: ignore[misc]


def test_klines_pickle_and_copy_by_value():
    """Built either way, a kline survives pickle (the optimiser's workers), copy and replace as the same value."""
    import copy
    import dataclasses
    import pickle

    for made in (new_kline("FILUSDT", "1m", 0, 1.0, 2.0, 0.5, 1.5, 3.0, 59_999, 59_998), _kline()):
        for twin in (pickle.loads(pickle.dumps(made)), copy.copy(made), copy.deepcopy(made)):
            assert type(twin) is KlineClosed and twin == made and twin is not made
        assert dataclasses.replace(made, close=9.0).close == 9.0 and made.close != 9.0
        assert not hasattr(made, "__dict__")
        with pytest.raises(AttributeError):
            object.__setattr__(made, "extra", 1)  # slotted: no room for anything else


def test_new_kline_stores_every_field_by_its_name():
    """The fast constructor's arguments land in the fields of the same name, whatever the field order."""
    names = [f.name for f in fields(KlineClosed)]
    params = list(inspect.signature(new_kline).parameters)
    assert sorted(params) == sorted(names)
    values = {name: f"value-{name}" for name in params}  # a distinct value per field
    made = new_kline(*values.values())
    assert {name: getattr(made, name) for name in names} == values
    assert made == KlineClosed(**values)  # type: ignore[arg-type]
