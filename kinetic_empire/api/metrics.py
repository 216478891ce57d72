"""``/metrics``: Prometheus text (prometheus-client), every name prefixed ``kinetic_``.

Counters and histograms are fed by bus events and by two engine hooks (REST calls via an aiohttp trace,
journal commits); figures the engine already counts (weight, reconnects, feed age) are read at scrape time
by a collector, so nothing extra runs per kline. The registry is per gateway: two runs in one process
(tests) never share a metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.clock import Clock
from ..core.events import Alert, OrderAccepted, OrderFilled, OrderIntent, OrderRejected, OrderRequest, RiskDenied
from ..live.execution_quality import ExecutionQuality

if TYPE_CHECKING:
    from ..live.app import LiveEngine

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLIPPAGE_BPS = (-50, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50, 100)
_ROUTES = ("/api/", "/metrics", "/reports/", "/login", "/static/", "/openapi.json")
MANUAL_SOURCES = ("manual", "operator", "shutdown")


class ApiMetrics:
    """The gateway's Prometheus registry and the bus/engine hooks that feed it."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.api_latency = Histogram("kinetic_api_request_duration_seconds", "operator API request latency",
                                     ["endpoint", "method"], buckets=_LATENCY, registry=r)
        self.api_errors = Counter("kinetic_api_errors_total", "operator API answers >= 400 by status", ["code"],
                                  registry=r)
        self.rest_latency = Histogram("kinetic_rest_request_duration_seconds", "venue REST latency per endpoint",
                                      ["endpoint"], buckets=_LATENCY, registry=r)
        self.rest_errors = Counter("kinetic_rest_errors_total", "venue REST answers >= 400 by HTTP status",
                                   ["code"], registry=r)
        self.orders_placed = Counter("kinetic_orders_placed_total", "orders the venue accepted", registry=r)
        self.orders_filled = Counter("kinetic_orders_filled_total", "orders completely filled", registry=r)
        self.orders_rejected = Counter("kinetic_orders_rejected_total", "orders rejected, by Binance code",
                                       ["code"], registry=r)
        self.denials = Counter("kinetic_risk_denials_total", "intents the risk manager denied", ["code"], registry=r)
        self.slippage = Histogram("kinetic_slippage_bps", "fill price against the intended price, bps (+ = worse)",
                                  buckets=_SLIPPAGE_BPS, registry=r)
        self.journal_commit = Histogram("kinetic_journal_commit_seconds", "journal confirm (commit) before a send",
                                        buckets=_LATENCY, registry=r)
        self.kline_to_order = Histogram("kinetic_kline_to_order_seconds",
                                        "kline message received to the strategy's order request published",
                                        buckets=_LATENCY, registry=r)
        self.ping = Histogram("kinetic_venue_ping_seconds", "venue round trip (/api/execution/ping)",
                              buckets=_LATENCY, registry=r)
        self.alerts = Counter("kinetic_alerts_total", "alerts raised, by kind", ["kind", "severity"], registry=r)
        self.alerts_active = Gauge("kinetic_alerts_active", "alerts active now", registry=r)
        self.quality = ExecutionQuality()
        self._sent = 0
        self.rest_error_count = 0
        self._filled = 0
        self._rejected = 0
        self._engine: LiveEngine | None = None
        self.sse_clients = lambda: 0
        r.register(_EngineCollector(self))

    # ------------------------------------------------------------------------------ engine hooks
    def trace_config(self, clock: Clock) -> aiohttp.TraceConfig:
        """An aiohttp trace for the engine's REST session: latency per endpoint, errors by status."""
        trace = aiohttp.TraceConfig()

        async def start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
            ctx.t0 = clock.monotonic()

        async def end(_s: Any, ctx: SimpleNamespace, p: Any) -> None:
            self.rest_latency.labels(p.url.path).observe(clock.monotonic() - ctx.t0)
            status = p.response.status
            if status >= 400:
                self.rest_errors.labels(str(status)).inc()
                if status >= 500 or status in (418, 429):  # the venue failing, not refusing: a 400 such as
                    self.rest_error_count += 1  # -4046 "no need to change margin type" is an answer

        async def failed(_s: Any, _ctx: SimpleNamespace, _p: Any) -> None:
            self.rest_errors.labels("network").inc()
            self.rest_error_count += 1

        trace.on_request_start.append(start)
        trace.on_request_end.append(end)
        trace.on_request_exception.append(failed)
        return trace

    def on_journal_commit(self, seconds: float) -> None:
        self.journal_commit.observe(seconds)

    def attach(self, engine: LiveEngine) -> None:
        self._engine = engine
        bus = engine.bus
        for cls in (OrderIntent, OrderRequest, OrderAccepted, OrderRejected, OrderFilled):
            bus.subscribe(cls, self._on_order_event)
        bus.subscribe(RiskDenied, self._on_denied)
        bus.subscribe(Alert, self._on_alert)

    def _on_order_event(self, e: Any) -> None:
        bps = self.quality.on_event(e)
        kind = type(e)
        if kind is OrderRequest:
            self._sent += 1
            engine = self._engine
            if engine is not None and e.strategy_id not in MANUAL_SOURCES and not e.close_position:
                recv = engine.feed.last_recv if hasattr(engine, "feed") else 0.0
                if recv:
                    self.kline_to_order.observe(max(0.0, engine.timer.monotonic() - recv))
        elif kind is OrderAccepted:
            self.orders_placed.inc()
        elif kind is OrderRejected:
            self._rejected += 1
            self.orders_rejected.labels(str(e.code)).inc()
        elif kind is OrderFilled:
            if bps is not None:
                self.slippage.observe(bps)
            if e.status.value == "FILLED":
                self._filled += 1
                self.orders_filled.inc()

    def _on_denied(self, d: RiskDenied) -> None:
        self.denials.labels(d.code).inc()

    def _on_alert(self, a: Alert) -> None:
        if not a.cleared:
            self.alerts.labels(a.kind, a.severity).inc()

    def observe_ping(self, seconds: float) -> None:
        self.ping.observe(seconds)

    # ------------------------------------------------------------------------------ rates
    def fill_rate(self) -> float:
        return self._filled / self._sent if self._sent else 0.0

    def reject_rate(self) -> float:
        return self._rejected / self._sent if self._sent else 0.0

    @property
    def sent(self) -> int:
        return self._sent

    # ------------------------------------------------------------------------------ serving
    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def middleware(self, app: ASGIApp, clock: Clock) -> ASGIApp:
        """ASGI middleware timing every request by its route (never by raw path: no label explosion)."""
        metrics = self

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t0 = clock.monotonic()
            status = 500

            async def seen(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    route = scope.get("route")
                    path = getattr(route, "path", None) or "unmatched"
                    metrics.api_latency.labels(path, scope["method"] if path != "unmatched" else "-").observe(
                        clock.monotonic() - t0)
                    if status >= 400:
                        metrics.api_errors.labels(str(status)).inc()
                await send(message)

            await app(scope, receive, seen)

        return timed


class _EngineCollector:
    """Figures the engine counts itself, read at scrape time."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield _gauge("kinetic_fill_rate", "orders completely filled / orders sent", m.fill_rate())
        yield _gauge("kinetic_reject_rate", "orders rejected by the venue / orders sent", m.reject_rate())
        yield _gauge("kinetic_sse_clients", "connected event-stream clients", m.sse_clients())
        e = m._engine
        if e is None or not e.started:
            return
        rest = e.rest
        yield _gauge("kinetic_request_weight_used", "request weight used in the current minute",
                     rest.stats.used_weight)
        yield _gauge("kinetic_request_weight_limit", "request weight limit per minute", rest.weight_limit)
        yield _counter("kinetic_rest_requests", "venue REST requests", rest.stats.requests)
        yield _counter("kinetic_rest_rate_limited", "venue 429/418 answers", rest.stats.rate_limited)
        reconnects = CounterMetricFamily("kinetic_ws_reconnects", "WebSocket reconnects", labels=["stream"])
        reconnects.add_metric(["market"], e.feed.reconnects)
        reconnects.add_metric(["user"], e.user.reconnects)
        yield reconnects
        yield _counter("kinetic_klines_received", "closed klines published", e.feed.published)
        lag = GaugeMetricFamily("kinetic_feed_lag_seconds", "seconds since the last message per topic",
                                labels=["topic"])
        for sym, tf in e.feed.topics:
            age = e.feed.age_s((sym, tf))
            if age is not None:
                lag.add_metric([f"{sym} {tf}"], age)
        yield lag
        connected = GaugeMetricFamily("kinetic_stream_connected", "1 when connected", labels=["stream"])
        connected.add_metric(["market"], 1.0 if e.feed.connected else 0.0)
        connected.add_metric(["user"], 1.0 if e.user.connected else 0.0)
        yield connected
        state = GaugeMetricFamily("kinetic_trading_state", "account trading state (1 = current)", labels=["state"])
        for s in ("ACTIVE", "REDUCING", "HALTED"):
            state.add_metric([s], 1.0 if e.risk.state.value == s else 0.0)
        yield state


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)
