"""The Binance USD-M futures adapter: one file per concern.

* :mod:`.venues`: venues, URLs, the production refusal, request weights;
* :mod:`.signing`: keys from the environment or ``.env``, HMAC signing;
* :mod:`.errors`: Binance's error codes mapped to our exception types;
* :mod:`.wire`: the JSON shapes read and written at the boundary;
* :mod:`.translate`: user-stream payloads and REST snapshots -> bus events, each fact once;
* :mod:`.rest`: the async REST client (time sync, retries, error mapping);
* :mod:`.pacing`, :mod:`.backoff`: request-weight pacing and backoff with jitter (the downloader uses them too);
* :mod:`.wsconn`: one reconnecting WebSocket, for both streams;
* :mod:`.userstream`: listenKey lifecycle and the private stream, reconciling after every gap;
* :mod:`.market`: warm-up, the combined kline stream, gap backfill;
* :mod:`.execution`: the execution port (OrderRequest / CancelRequest -> orders, idempotently).
"""

from .errors import (
    AuthError,
    BinanceError,
    RateLimitError,
    RejectedError,
    TimestampError,
    UnavailableError,
    UnknownStatusError,
    VenueResponseError,
)
from .execution import BinanceExecution
from .market import KlineFeed
from .rest import BinanceRest
from .signing import ENV_KEY, ENV_SECRET, Credentials, load_credentials
from .translate import UserTranslator
from .userstream import UserStream
from .venues import CUSTOM, DEMO, SANDBOX, TESTNET, VENUES, Venue, is_production, preset, refuse_production

__all__ = [
    "CUSTOM",
    "DEMO",
    "ENV_KEY",
    "ENV_SECRET",
    "SANDBOX",
    "TESTNET",
    "VENUES",
    "AuthError",
    "BinanceError",
    "BinanceExecution",
    "BinanceRest",
    "Credentials",
    "KlineFeed",
    "RateLimitError",
    "RejectedError",
    "TimestampError",
    "UnavailableError",
    "UnknownStatusError",
    "UserStream",
    "UserTranslator",
    "Venue",
    "VenueResponseError",
    "is_production",
    "load_credentials",
    "preset",
    "refuse_production",
]
