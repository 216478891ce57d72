"""The HTTP application: routes, auth, JSON errors. Built by :class:`~kinetic_empire.api.server.Gateway`.

Every ``/api/*`` route except ``/api/health`` needs the run's token (Bearer header or the login cookie),
as do ``/metrics``, ``/openapi.json`` and ``/reports/*``. The static pages (``/``, ``/runs``, ``/static/*``)
carry no data and need none. Every error is JSON: ``{"error": "...", "field": "<name or null>"}``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .alerts import AlertBook
from .auth import COOKIE, ApiAuthError, TokenCheck
from .candles import DEFAULT_LIMIT, MAX_LIMIT, FillMarks, klines_answer
from .commands import OperatorCommands
from .metrics import ApiMetrics
from .orders import OrderTable
from .reports import ReportLibrary, ReportNotFound
from .schemas import ApiError, CancelBody, ControlBody, OrderBody
from .stream import EventStream
from .view import EngineView

if TYPE_CHECKING:
    from ..live.app import LiveEngine


class Served(Protocol):
    """What the routes need of the gateway (:class:`~kinetic_empire.api.server.Gateway` is the one)."""

    engine: LiveEngine
    view: EngineView
    orders: OrderTable
    fills: FillMarks
    commands: OperatorCommands
    stream: EventStream
    metrics: ApiMetrics
    alerts: AlertBook
    library: ReportLibrary
    token_check: TokenCheck

    def check_token(self, request: Request) -> None: ...

    def commands_check_symbol(self, symbol: str) -> None: ...

    async def market(self, symbol: str) -> dict[str, Any]: ...

    async def ping(self) -> dict[str, Any]: ...

    def log_crash(self, exc: Exception) -> None: ...

STATIC = Path(__file__).parent / "static"
_SYMBOL = r"^[A-Z0-9]{1,30}$"
_CLIENT_ID = r"^[.A-Z:/a-z0-9_-]{1,36}$"
_TIMEFRAME = r"^[0-9]{1,3}[smhdwM]$"
ERROR_SCHEMA = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error", "field"],
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {401: ERROR_SCHEMA, 422: ERROR_SCHEMA}


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _error(status: int, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, "field": field, **extra}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ("body" if loc and loc[0] == "body" else None)


def with_symbols(doc: dict[str, Any], symbols: list[str]) -> dict[str, Any]:
    """The document with this run's symbols as the enum of every ``symbol`` field: clients (and fuzzers) see
    what the run trades, not only the pattern."""
    doc = copy.deepcopy(doc)

    def narrow(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch["enum"] = symbols

    for body in doc.get("components", {}).get("schemas", {}).values():
        if "symbol" in body.get("properties", {}):
            narrow(body["properties"]["symbol"])
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("name") == "symbol":
                    narrow(param["schema"])
    return doc


def build_app(gw: Served) -> FastAPI:
    app = FastAPI(title="Kinetic Empire operator API", version="1", openapi_url=None, docs_url=None,
                  redoc_url=None, description="The gateway of one `kinetic run`: read the run, stream its "
                  "events, place manual orders and operator commands through the risk gate and the journal.")
    auth = Depends(gw.check_token)

    # ------------------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(ApiAuthError)
    async def _auth_error(_r: Request, exc: ApiAuthError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = _field(first.get("loc", ()))
        kind = str(first.get("type", ""))
        if kind == "json_invalid":
            return _error(400, "malformed JSON body", "body")
        if kind == "model_attributes_type" or (field == "body" and kind.endswith("_type")):
            return _error(422, "the body must be a JSON object", "body")
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid request"))
        return _error(422, message, field, details=[{"field": _field(e.get("loc", ())), "message": e.get("msg")}
                                                    for e in errors[:10]])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _crash(_r: Request, exc: Exception) -> JSONResponse:
        gw.log_crash(exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    # ------------------------------------------------------------------------------ pages (no data, no auth)
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/runs", include_in_schema=False)
    async def runs_page() -> FileResponse:
        return FileResponse(STATIC / "runs.html", media_type="text/html")

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> FileResponse:
        target = (STATIC / path).resolve()
        if not target.is_relative_to(STATIC.resolve()) or not target.is_file():
            raise ApiError(404, f"no static file {path!r}", "path")
        return FileResponse(target)

    @app.get("/login", include_in_schema=False)
    async def login(token: str = "") -> Response:
        if not gw.token_check.matches(token):
            return _error(401, "wrong token: use the link `kinetic run` printed", "token")
        reply = RedirectResponse("/", status_code=303)
        reply.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return reply

    # ------------------------------------------------------------------------------ reading
    @app.get("/api/health", tags=["read"])
    async def health() -> dict[str, Any]:
        """No auth: ok, run id, uptime."""
        return {"ok": gw.engine.started, "run_id": gw.engine.run_id, "uptime_s": gw.view.uptime_s()}

    @app.get("/api/status", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def status() -> dict[str, Any]:
        """Everything the stream's snapshot holds, plus the active alerts."""
        return {**gw.view.snapshot(), "alerts": gw.alerts.active()}

    @app.get("/api/config", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def config() -> dict[str, Any]:
        return gw.view.config()

    @app.get("/api/market", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def market(symbol: Annotated[str, Query(pattern=_SYMBOL)]) -> dict[str, Any]:
        gw.commands_check_symbol(symbol)
        return await gw.market(symbol)

    @app.get("/api/klines", tags=["read"], dependencies=[auth],
             responses={**_ERRORS, 404: ERROR_SCHEMA, 503: ERROR_SCHEMA})
    async def klines(symbol: Annotated[str, Query(pattern=_SYMBOL, description="a symbol this run trades")],
                     timeframe: Annotated[str | None, Query(pattern=_TIMEFRAME, description=(
                         "one the run follows for the symbol; absent: the shortest a strategy trades it on"))] = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="closed klines, newest kept")
                                      ] = DEFAULT_LIMIT) -> dict[str, Any]:
        """Closed klines the run holds (warm-up and live, oldest first), the kline in progress, and the
        symbol's fills since the first kline (``exit`` marks a fill that reduced a position)."""
        gw.commands_check_symbol(symbol)
        return klines_answer(gw.engine, gw.fills, symbol, timeframe, limit)

    @app.get("/api/account", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def account() -> dict[str, Any]:
        return gw.view.account()

    @app.get("/api/positions", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def positions() -> dict[str, Any]:
        return {"positions": gw.view.positions()}

    @app.get("/api/orders", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def orders(all: bool = False) -> dict[str, Any]:
        rows = gw.orders.rows.values() if all else gw.orders.open()
        return {"orders": [r.to_json() for r in rows]}

    @app.get("/api/order_state", tags=["read"], dependencies=[auth], responses={**_ERRORS, 404: ERROR_SCHEMA})
    async def order_state(client_order_id: Annotated[str, Query(pattern=_CLIENT_ID)]) -> dict[str, Any]:
        return gw.commands.order_state(client_order_id)

    @app.get("/api/trades", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def trades() -> dict[str, Any]:
        return {"trades": gw.view.trades()}

    @app.get("/api/equity", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def equity() -> dict[str, Any]:
        return gw.view.equity()

    @app.get("/api/alerts", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def alerts() -> dict[str, Any]:
        return {"active": gw.alerts.active(), "recent": gw.alerts.recent()}

    @app.get("/api/execution/ping", tags=["read"], dependencies=[auth], responses={**_ERRORS, 502: ERROR_SCHEMA})
    async def ping() -> dict[str, Any]:
        return await gw.ping()

    @app.get("/api/runs", tags=["reports"], dependencies=[auth], responses=_ERRORS)
    async def runs() -> dict[str, Any]:
        return gw.library.listing()

    @app.get("/reports/{kind}/{run_id}/{name}", tags=["reports"], dependencies=[auth],
             responses={**_ERRORS, 404: ERROR_SCHEMA})
    async def report_file(kind: str, run_id: str, name: str) -> FileResponse:
        try:
            path, media = gw.library.file(kind, run_id, name)
        except ReportNotFound as exc:
            raise ApiError(404, str(exc), "path") from None
        return FileResponse(path, media_type=media)

    @app.get("/api/stream", tags=["stream"], dependencies=[auth], responses=_ERRORS)
    async def stream(request: Request) -> StreamingResponse:
        """Server-sent events; send ``Last-Event-ID`` to resume (see the README for the shapes)."""
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        return StreamingResponse(gw.stream.messages(last), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/metrics", tags=["read"], dependencies=[auth], responses=_ERRORS)
    async def metrics() -> Response:
        body, media = gw.metrics.render()
        return Response(body, media_type=media)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[auth])
    async def openapi() -> JSONResponse:
        return JSONResponse(with_symbols(app.openapi(), list(gw.engine.symbols)))

    # ------------------------------------------------------------------------------ writing
    writes = {**_ERRORS, 400: ERROR_SCHEMA, 403: ERROR_SCHEMA, 409: ERROR_SCHEMA, 413: ERROR_SCHEMA,
              503: ERROR_SCHEMA}

    @app.post("/api/order", tags=["write"], dependencies=[auth], responses=writes)
    async def order(body: OrderBody) -> JSONResponse:
        """A manual order through the risk manager and the journal (strategy id ``manual``)."""
        status_code, answer = await gw.commands.place(body)
        return JSONResponse(answer, status_code=status_code)

    @app.post("/api/cancel", tags=["write"], dependencies=[auth], responses={**writes, 404: ERROR_SCHEMA})
    async def cancel(body: CancelBody) -> JSONResponse:
        status_code, answer = await gw.commands.cancel(body)
        return JSONResponse(answer, status_code=status_code)

    @app.post("/api/control", tags=["write"], dependencies=[auth], responses=writes)
    async def control(body: ControlBody) -> dict[str, Any]:
        """pause, resume, halt, flatten or cancel_all, for one symbol or the account, as an OperatorCommand."""
        return gw.commands.control(body)

    return app
