"""plotly.js from the installed ``plotly`` package, written next to each report: no CDN, no network.

The file is found without importing plotly's Python API (slow, and not needed: the figures are plain
dicts). A missing or broken installation is an error naming the package, never a report that silently
draws nothing.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from ..core.errors import KineticError

FILE_NAME = "plotly.min.js"


def plotly_js_path() -> Path:
    """Where the installed plotly package keeps its minified plotly.js."""
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        candidate = Path(folder) / "package_data" / FILE_NAME
        if candidate.is_file():
            return candidate
    raise KineticError(
        "interactive report: plotly.js not found (the 'plotly' Python package ships it; "
        "pip install plotly, a dependency of kinetic-empire)"
    )


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """The bytes of plotly.min.js (read once per process)."""
    return plotly_js_path().read_bytes()

