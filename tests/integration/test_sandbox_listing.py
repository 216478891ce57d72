"""exchangeInfo lists what the sandbox serves (issue 12 item 18): an unmodified ccxt client loads only markets
that answer. Binance's own listing has only tradable symbols as ``TRADING`` (reference 2: status values
PENDING_TRADING, TRADING, ... CLOSE); the sandbox trades only the replayed symbols, so it lists only those,
which ccxt (``active`` = status TRADING) handles best: unknown symbols fail in ccxt itself (BadSymbol) before
any request, and every market it loads answers."""

from __future__ import annotations

import ccxt
import ccxt.pro as ccxtpro
import pytest

from tests.support.ccxt_sandbox import point_ccxt
from tests.support.sandbox import Client, run

pytestmark = pytest.mark.integration


def test_ccxt_sees_only_markets_that_answer() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        ex = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                             "options": {"fetchCurrencies": False}}), sb)
        try:
            markets = await ex.load_markets()
            assert sorted(markets) == ["FIL/USDT:USDT", "NEAR/USDT:USDT"]
            assert all(m["active"] for m in markets.values())
            for symbol in markets:  # every listed market answers: no -1121
                assert (await ex.fetch_ticker(symbol))["last"] > 0
                assert len(await ex.fetch_ohlcv(symbol, "1m", limit=2)) == 2
            with pytest.raises(ccxt.BadSymbol):
                await ex.fetch_ticker("BTC/USDT:USDT")
        finally:
            await ex.close()
        rows = (await c.get("/fapi/v2/positionRisk")).data
        assert sorted(r["symbol"] for r in rows) == ["FILUSDT", "NEARUSDT"]
        assert (await c.public("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"})).code == -1121

    run(body)
