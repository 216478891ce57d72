"""The venue on its own: replay, accounts and stream payloads with no HTTP server, and no aiohttp below it."""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import kinetic_empire
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.sandbox import SandboxVenue
from tests.support.sandbox import SYM, config

T0 = 1_690_848_000_000


class Inbox:
    """A stream subscriber that keeps what it is sent (a :class:`~kinetic_empire.sandbox.streams.Subscriber`)."""

    def __init__(self) -> None:
        self.combined = False
        self.route = "market"  # the route it would be connected on: it gets /market-class streams
        self.streams: list[str] = []
        self.listen_key: str | None = None
        self.events: frozenset[str] | None = None
        self.sent: list[Any] = []

    def push(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def push_json(self, payload: Any, stream: str | None = None) -> None:
        self.sent.append(payload)

    def close_soon(self) -> None:
        pass


def test_venue_replays_trades_and_streams_without_a_server() -> None:
    venue = SandboxVenue(config())
    market = Inbox()
    venue.hub.subscribe(market, ["filusdt@kline_1m"])
    assert venue.play_klines(3) == 3
    assert venue.market_ms() == T0 + 3 * 60_000 - 1
    closes = [m for m in market.sent if m["k"]["x"]]
    assert [m["k"]["t"] for m in closes] == [T0, T0 + 60_000, T0 + 120_000]

    acct = venue.account()
    user = Inbox()
    key = venue.users.create(acct)
    assert venue.users.attach(key, user) is acct
    acct.exchange.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(10),
                         client_order_id="venue-1")
    venue.play_updates(1)  # the next kline opens: the market order fills at its open
    kinds = [(m["e"], m.get("o", {}).get("x")) for m in user.sent]
    assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"), ("ACCOUNT_UPDATE", None)]
    assert acct.exchange.position(SYM)[0] == Decimal(10)
    assert venue.wire_position(acct, SYM).risk_v3(0)["positionAmt"] == "10.0"


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names a module imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = ".".join(x for x in (base, node.module) if x)
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def test_the_venue_imports_no_http_library() -> None:
    root = Path(kinetic_empire.__file__).parent
    todo, seen, third_party = ["kinetic_empire.sandbox.venue"], set(), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        rel = Path(*module.split(".")[1:])
        path = root / rel.with_suffix(".py") if (root / rel.with_suffix(".py")).exists() else root / rel / "__init__.py"
        if not path.exists():
            continue
        for name in _imports(path, module):
            if name.startswith("kinetic_empire."):
                todo.append(name)
            else:
                third_party.add(name.split(".")[0])
    assert "kinetic_empire.sandbox.market" in seen
    assert not third_party & {"aiohttp", "websockets", "yarl"}, sorted(third_party)
