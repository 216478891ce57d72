"""Progress bars (tqdm) for downloads and imports, shown only when stderr is a terminal.

One bar per symbol counts finished files/pages; an overall bar counts bytes, so it shows the transfer
rate. Without a terminal (CI, logs, tests) nothing is drawn and the summary says it all.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_enabled(flag: bool | None) -> bool:
    """`flag`, or (None) whether stderr is an interactive terminal."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class DownloadProgress:
    """Bars for a download run; every method is a no-op when disabled."""

    def __init__(self, symbols: list[str], enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}
        self._overall: Any = None
        if not enabled:
            return
        self._overall = tqdm(desc="overall", unit="B", unit_scale=True, unit_divisor=1024, position=0,
                             file=sys.stderr, dynamic_ncols=True)
        for i, sym in enumerate(symbols, start=1):
            self._bars[sym] = tqdm(desc=f"{sym:<14}", total=0, unit="file", position=i, file=sys.stderr,
                                   dynamic_ncols=True, leave=True)

    def add_work(self, symbol: str, n: int) -> None:
        bar = self._bars.get(symbol)
        if bar is not None and n:
            bar.total = (bar.total or 0) + n
            bar.refresh()

    def done(self, symbol: str, rows: int) -> None:
        bar = self._bars.get(symbol)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"+{rows:,} rows", refresh=False)

    def transferred(self, n: int) -> None:
        if self._overall is not None:
            self._overall.update(n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        if self._overall is not None:
            self._overall.close()
