from decimal import Decimal as D

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.rules import SymbolRules


@pytest.fixture()
def btc(rules) -> SymbolRules:
    return rules["BTCUSDT"]


def test_parses_real_filters(btc):
    assert btc.tick_size == D("0.10") and btc.min_price == D("261.10")
    assert btc.step_size == D("0.001") and btc.min_notional == D("100")
    assert btc.multiplier_up == D("1.0500") and btc.max_num_orders == 10000
    assert btc.is_trading


def test_unknown_filters_are_ignored(rules):
    entry = {
        "symbol": "NEWUSDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01", "minPrice": "0.01", "maxPrice": "1000"},
            {"filterType": "LOT_SIZE", "stepSize": "1", "minQty": "1", "maxQty": "100"},
            {"filterType": "SOMETHING_NEW_IN_2027", "x": 1},
        ],
    }
    r = SymbolRules.from_exchange_info(entry)
    assert r.tick_size == D("0.01") and r.min_notional == 0


def test_quantity_rounds_down_never_up(btc):
    assert btc.round_qty(D("0.0019999")) == D("0.001")
    assert btc.round_qty(D("1.2345")) == D("1.234")
    assert btc.round_qty(D("0.0009")) == D("0.000")


def test_prices_round_to_the_safe_side(btc):
    assert btc.round_price(D("60000.06"), Side.BUY) == D("60000.0")  # a buy limit never pays more
    assert btc.round_price(D("60000.06"), Side.SELL) == D("60000.1")  # a sell limit never sells for less
    assert btc.round_price(D("60000.06"), Side.SELL, passive=False) == D("60000.0")
    assert btc.round_price(D("60000.10"), Side.BUY) == D("60000.10")  # on the grid: unchanged


@pytest.mark.parametrize(
    ("qty", "price", "code"),
    [
        (D("0.002"), D("60000.05"), -4014),  # off tick
        (D("0.0015"), D("60000.0"), -1111),  # more decimals than the step
        (D("0.0"), D("60000.0"), -4003),
        (D("0.001"), D("60000.0"), -4164),  # 60 USDT < 100 min notional
        (D("2000"), D("60000.0"), -4005),
        (D("0.002"), D("200.0"), -4013),
        (D("0.002"), D("70000.0"), -4016),  # above mark x 1.05
    ],
)
def test_check_order_gives_binance_codes(btc, qty, price, code):
    v = btc.check_order(
        side=Side.BUY, order_type=OrderType.LIMIT, quantity=qty, price=price, trigger_price=None,
        mark_price=D("60000"),
    )  # fmt: skip
    assert v is not None and v.binance_code == code


def test_min_notional_boundary_and_reduce_only_exemption(btc):
    ok = btc.check_order(side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.002"), price=D("50000.0"),
                         trigger_price=None, mark_price=D("50000"))  # fmt: skip
    assert ok is None  # exactly 100
    below = btc.check_order(side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.001"), price=D("99999.9"),
                            trigger_price=None, mark_price=D("99999"))  # fmt: skip
    assert below is not None and below.message.startswith("Order's notional must be no smaller than 100 ")
    exempt = btc.check_order(side=Side.SELL, order_type=OrderType.MARKET, quantity=D("0.001"), price=None,
                             trigger_price=None, mark_price=D("50000"), reduce_only=True)  # fmt: skip
    assert exempt is None


def test_brackets(brackets):
    b = brackets["BTCUSDT"]
    assert b.max_leverage() >= b.max_leverage(D("10000000"))
    first = b.brackets[0]
    assert b.maintenance_margin(D(1000)) == D(1000) * first.maint_margin_ratio - first.cum
    # maintenance margin is continuous at every bracket boundary
    for lower, upper in zip(b.brackets, b.brackets[1:]):
        at = upper.notional_floor
        assert at * lower.maint_margin_ratio - lower.cum == pytest.approx(at * upper.maint_margin_ratio - upper.cum)
