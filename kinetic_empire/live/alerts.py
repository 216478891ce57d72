"""The alerts an operator must see now: every :class:`Alert` published on the bus and not cleared yet.

One bus reader (subscribed by the live engine), read by the status view (and an operator API): an alert is
keyed by (kind, symbol); a later one with the same key replaces it, one with ``cleared=True`` removes it.
"""

from __future__ import annotations

from ..core.events import Alert


class ActiveAlerts:
    def __init__(self) -> None:
        self.active: dict[tuple[str, str | None], Alert] = {}
        self.raised = 0  # alerts raised over the run (cleared ones included)

    def on_alert(self, alert: Alert) -> None:
        key = (alert.kind, alert.symbol)
        if alert.cleared:
            self.active.pop(key, None)
        else:
            self.raised += key not in self.active
            self.active[key] = alert

    def lines(self) -> list[str]:
        """One line per active alert, critical first."""
        ordered = sorted(self.active.values(), key=lambda a: (a.severity != "critical", a.kind, a.symbol or ""))
        return [f"ALERT {a.severity.upper()} {a.kind}{' ' + a.symbol if a.symbol else ''}: {a.message}"
                for a in ordered]


__all__ = ["ActiveAlerts"]
