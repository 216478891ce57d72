"""Alerts: what an operator must see now, raised as :class:`~kinetic_empire.core.events.Alert` on the bus.

Other parts publish their own (the protection code raises ``unprotected_position``); this book forwards
every alert to the stream and the metrics and keeps which are active. It also raises the ones only the
gateway can see, checked every few seconds on the engine's timer (never per kline):

- ``weight_high``: request weight used above ``weight_pct`` of the venue's limit;
- ``error_rate``: venue REST failures (5xx, 418, 429, network) above ``error_rate`` of the requests since
  the last check (at least ``min_requests`` of them); a 4xx answer such as -4046 is not a failure;
- ``reject_rate``: venue rejections above ``reject_rate`` of the orders sent (at least ``min_orders``);
- ``stale_feed``: a market topic silent past the engine's stale threshold;
- ``reconcile_mismatch``: a symbol reconciliation found at odds with the venue (flagged until resolved).

Each is published once when it starts and once, ``cleared``, when it ends; alerts are journaled.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.events import Alert
from .encode import event_dict

if TYPE_CHECKING:
    from ..live.app import LiveEngine
    from .metrics import ApiMetrics


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    weight_pct: float = 80.0
    error_rate: float = 0.2
    min_requests: int = 10
    reject_rate: float = 0.2
    min_orders: int = 5


class AlertBook:
    """Active and recent alerts; the gateway's own checks."""

    def __init__(self, thresholds: AlertThresholds | None = None, recent: int = 200) -> None:
        self.thresholds = thresholds or AlertThresholds()
        self._active: dict[tuple[str, str | None], Alert] = {}
        self._recent: deque[Alert] = deque(maxlen=recent)
        self._engine: LiveEngine | None = None
        self._metrics: ApiMetrics | None = None
        self._last_requests = 0
        self._last_errors = 0

    def attach(self, engine: LiveEngine, metrics: ApiMetrics) -> None:
        self._engine, self._metrics = engine, metrics

    def on_alert(self, a: Alert) -> None:
        key = (a.kind, a.symbol)
        if a.cleared:
            self._active.pop(key, None)
        else:
            self._active[key] = a
        self._recent.append(a)
        if self._metrics is not None:
            self._metrics.alerts_active.set(len(self._active))

    def active(self) -> list[dict[str, Any]]:
        return [event_dict(a) for a in self._active.values()]

    def recent(self) -> list[dict[str, Any]]:
        return [event_dict(a) for a in self._recent]

    def lines(self) -> list[str]:
        """One line per active alert, for a status view."""
        return [f"ALERT {a.severity} {a.kind}{' ' + a.symbol if a.symbol else ''}: {a.message}"
                for a in self._active.values()]

    # ------------------------------------------------------------------------------ the gateway's checks
    def check(self, engine: LiveEngine) -> None:
        if not engine.started:
            return
        t = self.thresholds
        rest = engine.rest
        used, limit = rest.stats.used_weight, rest.weight_limit
        pct = 100.0 * used / limit if limit else 0.0
        self._set(engine, "weight_high", pct > t.weight_pct, None,
                  f"request weight {used}/{limit} ({pct:.0f}%) above {t.weight_pct:g}% of the limit")
        m = self._metrics
        if m is not None:
            requests = rest.stats.requests
            errors = m.rest_error_count
            new_req, new_err = requests - self._last_requests, errors - self._last_errors
            if new_req >= t.min_requests:
                self._last_requests, self._last_errors = requests, errors
                rate = new_err / new_req
                self._set(engine, "error_rate", rate > t.error_rate, None,
                          f"venue errors {new_err} of {new_req} requests ({rate:.0%}) above {t.error_rate:.0%}")
            if m.sent >= t.min_orders:
                rate = m.reject_rate()
                self._set(engine, "reject_rate", rate > t.reject_rate, None,
                          f"venue rejected {rate:.0%} of {m.sent} orders, above {t.reject_rate:.0%}")
        stale = list(engine.health.stale_topics)
        self._set(engine, "stale_feed", bool(stale), None,
                  f"no market data on {', '.join(stale) or '-'}: entries paused", severity="critical")
        flagged = sorted(engine.reconciler.flagged)  # in symbol order: a set of str iterates in hash order
        for sym in flagged:
            self._set(engine, "reconcile_mismatch", True, sym,
                      f"{sym}: the venue's position differs from the journal's; entries stopped on it",
                      severity="critical")
        for kind, gone in list(self._active):
            if kind == "reconcile_mismatch" and gone is not None and gone not in flagged:
                self._set(engine, "reconcile_mismatch", False, gone, f"{gone}: reconciled")

    def _set(self, engine: LiveEngine, kind: str, on: bool, symbol: str | None, message: str,
             severity: str = "warning") -> None:
        active = (kind, symbol) in self._active
        if on == active:
            return
        now = engine.clock.now_ms()
        engine.bus.publish(Alert(kind=kind, message=message if on else f"cleared: {message}", symbol=symbol,
                                 severity=severity, cleared=not on, ts_event=now, ts_init=now))

