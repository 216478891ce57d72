"""Account, position and configuration endpoints (reference 3.4) and listenKeys (3.5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..core.enums import MarginType
from ..core.errors import ExchangeError
from .endpoints import SIGNED, USER_STREAM, Ctx, Endpoint, ep
from .errors import ApiError, bad_symbol, from_exchange, invalid
from .fmt import ZERO, money
from .routes_orders import symbol_of, window
from .wire import WirePosition, income_json, trade_json


def leverage(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    lev = p.int("leverage", True)
    assert lev is not None
    acct = ctx.acct
    if lev < 1 or lev > 125:
        raise ApiError(-4028, f"Leverage {lev} is not valid")
    before = acct.exchange.position(symbol)[2] if symbol in acct.exchange.symbols else None
    try:
        cap = acct.exchange.set_leverage(symbol, lev)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    if lev != before:  # Binance announces a real change only: setting the same leverage again sends nothing
        now = ctx.venue.market_ms()
        ctx.venue.users.send(acct, {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": symbol, "l": lev}})
    return {"leverage": lev, "maxNotionalValue": format(cap.normalize(), "f"), "symbol": symbol}


def margin_type(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    raw = p.req("marginType")
    try:
        mt = MarginType(raw.upper())
    except ValueError:
        raise invalid("marginType") from None
    try:
        ctx.acct.exchange.set_margin_type(symbol, mt)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    return {"code": 200, "msg": "success"}


def _switch(ctx: Ctx, name: str) -> bool:
    """A mandatory "true"/"false" account switch parameter."""
    if ctx.params.str(name) is None:
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return ctx.params.bool(name)


def _busy(ctx: Ctx) -> tuple[bool, bool]:
    """(open orders anywhere, a position anywhere): what blocks an account-wide switch."""
    acct = ctx.acct
    ex = acct.exchange
    return (bool(acct.open_orders(None) or acct.open_algos(None)),
            any(ex.position(s)[0] != 0 for s in ex.symbols))


def get_dual(ctx: Ctx) -> Any:
    return {"dualSidePosition": ctx.acct.hedge}


def set_dual(ctx: Ctx) -> Any:
    """Position mode for every symbol (reference 3.4). Binance documents no user-stream event for it."""
    hedge = _switch(ctx, "dualSidePosition")
    if hedge == ctx.acct.hedge:
        raise ApiError(-4059, "No need to change position side.")
    orders, positions = _busy(ctx)
    if orders:
        raise ApiError(-4067, "Position side cannot be changed if there exists open orders.")
    if positions:
        raise ApiError(-4068, "Position side cannot be changed if there exists position.")
    ctx.acct.hedge = hedge
    ctx.acct.touched = True
    return {"code": 200, "msg": "success"}


def multi_assets(ctx: Ctx) -> Any:
    return {"multiAssetsMargin": ctx.acct.multi_assets}


def set_multi_assets(ctx: Ctx) -> Any:
    """Multi-assets margin mode; a real change is announced as ACCOUNT_CONFIG_UPDATE ``ai.j`` (reference 8.3).
    The sandbox's only collateral is USDT, so margin figures do not change with the mode."""
    on = _switch(ctx, "multiAssetsMargin")
    acct = ctx.acct
    if on == acct.multi_assets:
        raise ApiError(-4171, "Adjusted asset mode is currently set and does not need to be adjusted repeatedly.")
    if _busy(ctx)[0]:
        raise ApiError(-4170, "Unable to adjust Multi-Assets Mode with open orders in USDⓈ-M Futures.")
    acct.multi_assets = on
    acct.touched = True
    now = ctx.venue.market_ms()
    ctx.venue.users.send(acct, {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ai": {"j": on}})
    return {"code": 200, "msg": "success"}


def fee_burn(ctx: Ctx) -> Any:
    return {"feeBurn": ctx.acct.fee_burn}


def set_fee_burn(ctx: Ctx) -> Any:
    """BNB fee burn for every symbol. The sandbox wallet holds no BNB, so fees stay in USDT either way (as on
    Binance when the BNB balance is empty)."""
    ctx.acct.fee_burn = _switch(ctx, "feeBurn")
    ctx.acct.touched = True
    return {"code": 200, "msg": "success"}


def _sides(ctx: Ctx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Position rows as the mode shows them: one BOTH row per symbol, or (hedge mode) a LONG and a SHORT row.
    Hedge-mode legs stay flat here: the mode is entered flat and the sandbox refuses leg orders."""
    if not ctx.acct.hedge:
        return rows
    return [{**r, "positionSide": side} for r in rows for side in ("LONG", "SHORT")]


def view(ctx: Ctx, symbol: str) -> WirePosition:
    return ctx.venue.wire_position(ctx.acct, symbol)


def _totals(ctx: Ctx) -> dict[str, Any]:
    ex = ctx.acct.exchange
    symbols = ex.symbols
    pim = sum((ex.position_initial_margin(s) for s in symbols), ZERO)
    oim = ex.open_order_initial_margin()
    mm = sum((ex.maintenance_margin(s) for s in symbols), ZERO)
    upnl = ex.total_unrealized_pnl()
    wallet = ex.wallet
    avail = ex.available_balance()
    max_withdraw = max(ZERO, min(avail, wallet - pim - oim))
    return {"wallet": wallet, "upnl": upnl, "mb": wallet + upnl, "pim": pim, "oim": oim, "mm": mm, "avail": avail,
            "max_withdraw": max_withdraw}


def _asset(t: dict[str, Any], now: int, v2: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "asset": "USDT",
        "walletBalance": money(t["wallet"]),
        "unrealizedProfit": money(t["upnl"]),
        "marginBalance": money(t["mb"]),
        "maintMargin": money(t["mm"]),
        "initialMargin": money(t["pim"] + t["oim"]),
        "positionInitialMargin": money(t["pim"]),
        "openOrderInitialMargin": money(t["oim"]),
        "crossWalletBalance": money(t["wallet"]),
        "crossUnPnl": money(t["upnl"]),
        "availableBalance": money(t["avail"]),
        "maxWithdrawAmount": money(t["max_withdraw"]),
    }
    if v2:
        out["marginAvailable"] = True
    out["updateTime"] = now
    return out


def account(ctx: Ctx, v2: bool) -> Any:
    t = _totals(ctx)
    now = ctx.venue.market_ms()
    out: dict[str, Any] = {}
    if v2:
        acct = ctx.acct
        out.update({"feeTier": 0, "feeBurn": acct.fee_burn, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                    "updateTime": 0, "multiAssetsMargin": acct.multi_assets, "tradeGroupId": -1})
    out.update({
        "totalInitialMargin": money(t["pim"] + t["oim"]),
        "totalMaintMargin": money(t["mm"]),
        "totalWalletBalance": money(t["wallet"]),
        "totalUnrealizedProfit": money(t["upnl"]),
        "totalMarginBalance": money(t["mb"]),
        "totalPositionInitialMargin": money(t["pim"]),
        "totalOpenOrderInitialMargin": money(t["oim"]),
        "totalCrossWalletBalance": money(t["wallet"]),
        "totalCrossUnPnl": money(t["upnl"]),
        "availableBalance": money(t["avail"]),
        "maxWithdrawAmount": money(t["max_withdraw"]),
        "assets": [_asset(t, now, v2)],
    })
    if v2:
        out["positions"] = _sides(ctx, [view(ctx, s).account_v2(now) for s in ctx.venue.rules])
    else:
        out["positions"] = [view(ctx, s).account_v3(now) for s in _active(ctx)]
    return out


def _active(ctx: Ctx) -> list[str]:
    """Symbols with a position or open orders (what v3 endpoints list)."""
    acct = ctx.acct
    ex = acct.exchange
    busy = {o.symbol for o in acct.open_orders(None)} | {r.sim.symbol for r in acct.open_algos(None)}
    return [s for s in ex.symbols if ex.position(s)[0] != 0 or s in busy]


def balance(ctx: Ctx) -> Any:
    t = _totals(ctx)
    return [{
        "accountAlias": "SgsRsandbox",
        "asset": "USDT",
        "balance": money(t["wallet"]),
        "crossWalletBalance": money(t["wallet"]),
        "crossUnPnl": money(t["upnl"]),
        "availableBalance": money(t["avail"]),
        "maxWithdrawAmount": money(t["max_withdraw"]),
        "marginAvailable": True,
        "updateTime": ctx.venue.market_ms(),
    }]


def position_risk(ctx: Ctx, v2: bool) -> Any:
    p = ctx.params
    symbol = p.str("symbol")
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    now = ctx.venue.market_ms()
    if v2:
        symbols = [symbol] if symbol else list(ctx.venue.rules)
        return _sides(ctx, [view(ctx, s).risk_v2(now) for s in symbols])
    symbols = [s for s in _active(ctx) if symbol is None or s == symbol]
    return [view(ctx, s).risk_v3(now) for s in symbols]


def user_trades(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    limit = p.limit(500, 1000)
    order_id = p.int("orderId")
    from_id = p.int("fromId")
    acct = ctx.acct
    trades = [t for t in acct.exchange.trades if t["symbol"] == symbol]
    if order_id is not None:
        rec = acct.actual.get(order_id)
        sim_id = rec.algo_id if rec is not None else order_id
        trades = [t for t in trades if t["orderId"] == sim_id]
    if from_id is not None:
        if p.has("startTime") or p.has("endTime"):
            raise ApiError(-4133, "fromId cannot be sent with startTime or endTime.")
        trades = [t for t in trades if t["id"] >= from_id][:limit]
    elif order_id is None:
        start, end = window(ctx, p)
        trades = [t for t in trades if start <= t["time"] <= end][-limit:]
    else:
        trades = trades[-limit:]
    return [trade_json(acct, t) for t in trades]


def income(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = p.str("symbol")
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    kind = p.str("incomeType")
    limit = p.limit(100, 1000)
    page = p.int("page", lo=1) or 1
    start, end = window(ctx, p, days=90) if (p.has("startTime") or p.has("endTime")) else (None, None)
    if start is None:
        end = ctx.venue.market_ms()
        start = end - 7 * 86_400_000
    items = [
        i for i in ctx.acct.exchange.income
        if (symbol is None or i["symbol"] == symbol) and (kind is None or i["incomeType"] == kind)
        and start <= i["time"] <= (end or 0)
    ]
    items = items[(page - 1) * limit: page * limit]
    return [income_json(i) for i in items]


def commission_rate(ctx: Ctx) -> Any:
    symbol = symbol_of(ctx, ctx.params)
    cfg = ctx.venue.config.exchange
    return {"symbol": symbol, "makerCommissionRate": format(cfg.maker_fee.normalize(), "f"),
            "takerCommissionRate": format(cfg.taker_fee.normalize(), "f"), "rpiCommissionRate": "0"}


def leverage_bracket(ctx: Ctx) -> Any:
    symbol = ctx.params.str("symbol")
    payload = ctx.venue.brackets_payload
    if symbol is None:
        return payload
    if symbol not in ctx.venue.rules:
        raise bad_symbol()
    return [e for e in payload if e["symbol"] == symbol]


def position_margin(ctx: Ctx) -> Any:
    """POST /fapi/v1/positionMargin: add (type 1) or remove (type 2) margin of an isolated position."""
    p = ctx.params
    symbol = symbol_of(ctx, p)
    amount = p.decimal("amount")
    if amount is None:
        raise ApiError(-1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed.")
    kind = p.int("type")
    if kind not in (1, 2):
        raise invalid("type")
    try:
        ctx.acct.exchange.modify_isolated_margin(symbol, amount, add=kind == 1)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": kind}


def symbol_config(ctx: Ctx) -> Any:
    symbol = ctx.params.str("symbol")
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    symbols = [symbol] if symbol else list(ctx.venue.rules)
    out = []
    for s in symbols:
        v = view(ctx, s)
        out.append({"symbol": s, "marginType": "ISOLATED" if v.isolated else "CROSSED", "isAutoAddMargin": False,
                    "leverage": v.leverage,
                    "maxNotionalValue": format(Decimal(v.max_notional).normalize(), "f")})
    return out


def account_config(ctx: Ctx) -> Any:
    acct = ctx.acct
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "dualSidePosition": acct.hedge,
            "updateTime": 0, "multiAssetsMargin": acct.multi_assets, "tradeGroupId": -1}


def listen_key_new(ctx: Ctx) -> Any:
    return {"listenKey": ctx.venue.users.create(ctx.acct)}


def listen_key_keepalive(ctx: Ctx) -> Any:
    key = ctx.venue.users.keepalive(ctx.acct)
    if key is None:
        raise ApiError(-1125, "This listenKey does not exist.")
    return {"listenKey": key}


def listen_key_close(ctx: Ctx) -> Any:
    ctx.venue.users.close(ctx.acct)
    return {}


def endpoints() -> list[Endpoint]:
    return [
        ep("POST", "/fapi/v1/leverage", leverage, SIGNED, 1, "symbol leverage"),
        ep("POST", "/fapi/v1/marginType", margin_type, SIGNED, 1, "symbol marginType"),
        ep("POST", "/fapi/v1/positionMargin", position_margin, SIGNED, 1, "symbol positionSide amount type"),
        ep("GET", "/fapi/v1/positionSide/dual", get_dual, SIGNED, 30),
        ep("POST", "/fapi/v1/positionSide/dual", set_dual, SIGNED, 1, "dualSidePosition"),
        ep("GET", "/fapi/v2/account", lambda c: account(c, True), SIGNED, 5),
        ep("GET", "/fapi/v3/account", lambda c: account(c, False), SIGNED, 5),
        ep("GET", "/fapi/v2/balance", balance, SIGNED, 5),
        ep("GET", "/fapi/v3/balance", balance, SIGNED, 5),
        ep("GET", "/fapi/v2/positionRisk", lambda c: position_risk(c, True), SIGNED, 5, "symbol"),
        ep("GET", "/fapi/v3/positionRisk", lambda c: position_risk(c, False), SIGNED, 5, "symbol"),
        ep("GET", "/fapi/v1/userTrades", user_trades, SIGNED, 5, "symbol orderId startTime endTime fromId limit"),
        ep("GET", "/fapi/v1/income", income, SIGNED, 30, "symbol incomeType startTime endTime page limit"),
        ep("GET", "/fapi/v1/commissionRate", commission_rate, SIGNED, 20, "symbol"),
        ep("GET", "/fapi/v1/leverageBracket", leverage_bracket, SIGNED, 1, "symbol"),
        ep("GET", "/fapi/v1/symbolConfig", symbol_config, SIGNED, 5, "symbol"),
        ep("GET", "/fapi/v1/accountConfig", account_config, SIGNED, 5),
        ep("GET", "/fapi/v1/multiAssetsMargin", multi_assets, SIGNED, 30),
        ep("POST", "/fapi/v1/multiAssetsMargin", set_multi_assets, SIGNED, 1, "multiAssetsMargin"),
        ep("GET", "/fapi/v1/feeBurn", fee_burn, SIGNED, 30),
        ep("POST", "/fapi/v1/feeBurn", set_fee_burn, SIGNED, 1, "feeBurn"),
        ep("POST", "/fapi/v1/listenKey", listen_key_new, USER_STREAM, 1, None),
        ep("PUT", "/fapi/v1/listenKey", listen_key_keepalive, USER_STREAM, 1, None),
        ep("DELETE", "/fapi/v1/listenKey", listen_key_close, USER_STREAM, 1, None),
    ]

