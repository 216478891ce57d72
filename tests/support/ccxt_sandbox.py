"""Point an unmodified ccxt exchange at the local sandbox: only its URLs change."""

from __future__ import annotations

from typing import Any


def point_ccxt(ex: Any, sb: Any) -> Any:
    for key, suffix in {"fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
                        "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3",
                        "fapiData": "/futures/data"}.items():
        ex.urls["api"][key] = sb.rest_url + suffix
    ex.urls["api"]["ws"]["linear"] = sb.ws_url + "/ws"
    ex.urls["api"]["ws"]["future"] = sb.ws_url + "/ws"
    return ex
