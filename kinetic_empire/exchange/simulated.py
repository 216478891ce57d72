"""A USD-M perpetual futures exchange in one object: orders, matching, margin, fees, funding, liquidation.

It knows nothing about backtests or HTTP. It takes orders and price updates and emits events through
the ``emit`` callable it is given (the bus in a backtest, the wire translator in the local sandbox).
Account model: one-way position mode, cross margin, USDT as the only margin asset, as in section 9 of
the Binance reference. Money is ``Decimal``; triggers are precomputed floats so the per-kline check
is a comparison.

One concept per module, joined here into one class:

- :mod:`.book` — per-symbol state (position, order queues, float triggers);
- :mod:`.ledger` — wallet, order table, trades and income; applying a fill;
- :mod:`.margin` and :mod:`.cross_margin` — leverage, margin figures and checks, liquidation;
- :mod:`.funding` — funding settlement;
- :mod:`.matching` — price updates and the intrabar rule (read its docstring for the rule);
- :mod:`.acceptance` — Binance's checks on a new order, and cancels.
"""

from __future__ import annotations

from .acceptance import Acceptance


class SimulatedExchange(Acceptance):
    """The futures account and matching model shared by backtests, the sandbox and tests."""


__all__ = ["SimulatedExchange"]
