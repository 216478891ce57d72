"""What a live run reads from and sets on the venue before trading: brackets, fees, wallet, margin and leverage."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..binance.account import commission_rates
from ..binance.errors import BinanceError, NoChangeError, RejectedError
from ..binance.rest import BinanceRest
from ..binance.translate import venue_balances
from ..core.enums import MarginType
from ..core.errors import KineticError
from ..core.events import Alert
from ..core.rules import LeverageBrackets, parse_brackets
from ..resources import default_brackets
from ..risk import RiskConfig

log = logging.getLogger(__name__)


async def leverage_brackets(rest: BinanceRest, symbols: Sequence[str]) -> dict[str, LeverageBrackets]:
    """The venue's brackets, or the bundled snapshot when they are unusable or miss a traded symbol."""
    try:
        payload = await rest.signed("GET", "/fapi/v1/leverageBracket")
        found = parse_brackets(payload if isinstance(payload, list) else [payload])
        if all(sym in found for sym in symbols):
            return found
    except (BinanceError, ValueError, KeyError, TypeError) as exc:
        log.warning("leverage brackets from the venue unusable (%s); using the bundled snapshot", exc)
    return default_brackets()


async def fee_rates(rest: BinanceRest, symbols: Sequence[str]) -> tuple[Decimal, Decimal]:
    """Every traded symbol's rates are read; the engine's one rate pair is the highest of each (conservative)."""
    rates = await commission_rates(rest, symbols)
    return max(m for m, _t in rates.values()), max(t for _m, t in rates.values())


async def usdt_wallet(rest: BinanceRest) -> Decimal:
    for b in venue_balances(await rest.signed("GET", "/fapi/v2/balance")):
        if b.asset == "USDT":
            return b.wallet
    raise KineticError("the account has no USDT balance")


@dataclass(frozen=True, slots=True)
class SymbolSettings:
    """A symbol's margin type and leverage: what the config wants, or what the venue holds."""

    margin_type: MarginType
    leverage: int


@dataclass(frozen=True, slots=True)
class SettingMismatch:
    """The venue kept a setting other than the configured one (e.g. -4048: a position is open under the other
    margin type); ``refusal`` is the venue's answer to the change, when it gave one."""

    symbol: str
    setting: str  # "margin type" or "leverage"
    wanted: str
    actual: str
    refusal: str = ""

    @property
    def message(self) -> str:
        why = f" (the change was refused: {self.refusal})" if self.refusal else ""
        return f"{self.symbol} {self.setting}: configured {self.wanted}, the venue has {self.actual}{why}"

    @property
    def hint(self) -> str:
        key = "margin_type" if self.setting == "margin type" else "leverage"
        value = self.actual.removesuffix("x")  # leverage is shown as 5x, configured as 5
        return (f"close {self.symbol}'s position and open orders on the venue and start again, or set "
                f"risk.{key}.{self.symbol}: {value}, or live.settings_mismatch: adopt (trade under the "
                "venue's setting, with an alert)")


def compare_settings(wanted: Mapping[str, SymbolSettings], actual: Mapping[str, SymbolSettings],
                     refusals: Mapping[tuple[str, str], str] | None = None) -> list[SettingMismatch]:
    """Every symbol whose venue settings differ from the configured ones (a symbol the venue did not report
    at all is a mismatch too: the engine cannot know what it trades under)."""
    refusals = refusals or {}
    out = []
    for sym, want in wanted.items():
        have = actual.get(sym)
        pairs = (("margin type", str(want.margin_type), None if have is None else str(have.margin_type)),
                 ("leverage", f"{want.leverage}x", None if have is None else f"{have.leverage}x"))
        for setting, w, a in pairs:
            if w != a:
                out.append(SettingMismatch(sym, setting, w, a or "not reported", refusals.get((sym, setting), "")))
    return out


def adopt_venue_settings(config: RiskConfig, actual: Mapping[str, SymbolSettings],
                         mismatches: Sequence[SettingMismatch]) -> RiskConfig:
    """The risk config with each mismatched symbol's margin type and leverage replaced by the venue's, so the
    gate's margin and liquidation-distance checks describe the account as it is."""
    margin = dict(config.margin_type)
    leverage = dict(config.leverage)
    for m in mismatches:
        have = actual.get(m.symbol)
        if have is None:
            raise KineticError(f"{m.symbol}: the venue did not report its margin type and leverage; "
                               "cannot trade under unknown settings")
        if m.setting == "margin type":
            margin[m.symbol] = have.margin_type
        else:
            leverage[m.symbol] = have.leverage
    return replace(config, margin_type=MappingProxyType(margin), leverage=MappingProxyType(leverage))


def wanted_settings(symbols: Sequence[str], config: RiskConfig, leverage: Mapping[str, int]
                    ) -> dict[str, SymbolSettings]:
    """What the config asks of each traded symbol (``leverage``: already checked against the brackets)."""
    return {sym: SymbolSettings(config.margin_type_for(sym), leverage.get(sym, config.leverage_for(sym)))
            for sym in symbols}


def settle_mismatches(config: RiskConfig, actual: Mapping[str, SymbolSettings],
                      mismatches: Sequence[SettingMismatch], *, adopt: bool) -> RiskConfig:
    """The risk config a run may trade under: unchanged when the venue holds the configured settings; the
    venue's settings for the mismatched symbols when ``adopt`` (``live.settings_mismatch: adopt``); otherwise
    the start is refused, naming each mismatch and how to fix it."""
    if not mismatches:
        return config
    if not adopt:
        lines = [f"  {m.message}" for m in mismatches]
        fixes = [f"  fix: {h}" for h in dict.fromkeys(m.hint for m in mismatches)]
        raise KineticError("the venue keeps settings other than the config's; not starting:\n"
                           + "\n".join(lines + fixes))
    return adopt_venue_settings(config, actual, mismatches)


def mismatch_alerts(mismatches: Sequence[SettingMismatch], now_ms: int, *, adopted: bool) -> list[Alert]:
    """One ``margin_type_mismatch`` or ``leverage_mismatch`` alert per mismatched setting."""
    tail = "; the risk gate uses the venue's setting" if adopted else ""
    return [Alert(kind=f"{m.setting.replace(' ', '_')}_mismatch", message=m.message + tail, symbol=m.symbol,
                  severity="warning", ts_event=now_ms, ts_init=now_ms) for m in mismatches]


async def set_symbol(rest: BinanceRest, symbol: str, margin_type: str, leverage: int) -> dict[str, str]:
    """Margin type (the symbol's ``risk.margin_type``, else ``live.margin_type``) and leverage for ``symbol``.

    An unchanged margin type (-4046 "No need to change margin type") is fine. A change the venue refuses (-4047
    open orders, -4048 a position, -4028 an invalid leverage, -2027 a position too big for it...) leaves the
    setting as it was: returned as {setting: "code message"} for :func:`venue_settings` to confirm.
    """
    refused: dict[str, str] = {}
    for setting, path, params in (
        ("margin type", "/fapi/v1/marginType", {"symbol": symbol, "marginType": margin_type}),
        ("leverage", "/fapi/v1/leverage", {"symbol": symbol, "leverage": leverage}),
    ):
        try:
            await rest.signed("POST", path, params)
        except NoChangeError:
            pass
        except RejectedError as exc:
            refused[setting] = f"{exc.code} {exc.msg}"
    return refused


async def venue_settings(rest: BinanceRest, symbols: Sequence[str]) -> dict[str, SymbolSettings]:
    """Each symbol's margin type and leverage as the venue holds them: ``GET /fapi/v2/positionRisk`` (one-way
    rows; v3 has neither field), and ``GET /fapi/v1/symbolConfig`` for a symbol it leaves out."""
    out = settings_from_rows(await rest.signed("GET", "/fapi/v2/positionRisk"), symbols)
    for sym in symbols:
        if sym not in out:
            out.update(settings_from_rows(await rest.signed("GET", "/fapi/v1/symbolConfig", {"symbol": sym}), [sym]))
    return out


def settings_from_rows(rows: Any, symbols: Sequence[str]) -> dict[str, SymbolSettings]:
    """``marginType`` ("cross"/"isolated" in positionRisk, "CROSSED"/"ISOLATED" in symbolConfig) and leverage."""
    wanted = set(symbols)
    out: dict[str, SymbolSettings] = {}
    try:
        for r in rows if isinstance(rows, list) else [rows]:
            sym = str(r["symbol"])
            if sym in wanted and r.get("positionSide", "BOTH") == "BOTH":
                kind = str(r["marginType"]).lower()
                if kind not in ("isolated", "cross", "crossed"):
                    raise ValueError(f"marginType {kind!r}")
                margin = MarginType.ISOLATED if kind == "isolated" else MarginType.CROSSED
                out[sym] = SymbolSettings(margin, int(r["leverage"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise KineticError(f"unreadable margin type or leverage from the venue ({exc})") from None
    return out


async def apply_symbol_settings(rest: BinanceRest, wanted: Mapping[str, SymbolSettings]
                                ) -> tuple[dict[str, SymbolSettings], list[SettingMismatch]]:
    """Set every symbol's margin type and leverage, then read back what the venue holds: (actual, mismatches)."""
    refusals: dict[tuple[str, str], str] = {}
    for sym, want in wanted.items():
        for setting, why in (await set_symbol(rest, sym, want.margin_type, want.leverage)).items():
            refusals[sym, setting] = why
    actual = await venue_settings(rest, list(wanted))
    mismatches = compare_settings(wanted, actual, refusals)
    for m in mismatches:
        log.warning("%s", m.message)
    return actual, mismatches
