"""A local Binance USD-M futures exchange (REST + WebSocket) backed by the simulated exchange.

Public API: :class:`SandboxServer` (start/stop, ``step``/``advance_to``, URLs and keys), the
:class:`SandboxVenue` it serves (accounts, market data, replay, faults; no HTTP), :class:`SandboxConfig`
with :class:`RateLimitConfig` and :class:`FaultConfig`, and :class:`ApiKey`.
"""

from .auth import ApiKey
from .config import FaultConfig, RateLimitConfig, SandboxConfig
from .server import SandboxServer
from .venue import SandboxVenue

__all__ = ["ApiKey", "FaultConfig", "RateLimitConfig", "SandboxConfig", "SandboxServer", "SandboxVenue"]
