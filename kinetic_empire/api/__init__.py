"""The operator gateway: HTTP API, server-sent events, Prometheus metrics and the dashboard's files.

One :class:`Gateway` per ``kinetic run``, served in the run's own event loop. It reads the bus and the
engine; it writes only bus commands (manual orders, cancels, operator commands) that pass the risk gate
and the journal like a strategy's. Shapes of every endpoint and event: ``kinetic_empire/api/README.md``.
"""

from __future__ import annotations

from .alerts import AlertBook, AlertThresholds
from .auth import COOKIE, ENV_TOKEN, TOKEN_FILE, check_host, resolve_token
from .metrics import ApiMetrics
from .orders import BINANCE_TO_STATE, OrderTable
from .server import DEFAULT_PORT, Gateway

__all__ = ["BINANCE_TO_STATE", "COOKIE", "DEFAULT_PORT", "ENV_TOKEN", "TOKEN_FILE", "AlertBook", "AlertThresholds",
           "ApiMetrics", "Gateway", "OrderTable", "check_host", "resolve_token"]
