"""What start-up decides when the venue keeps another margin type or leverage than the config's (a position or
open orders under the old one): refuse with the fix, or adopt the venue's settings so the risk gate's
liquidation-distance guard describes the account as it is, with one alert per mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinetic_empire.core.enums import MarginType
from kinetic_empire.core.errors import KineticError
from kinetic_empire.live.venue_setup import (
    SettingMismatch,
    SymbolSettings,
    adopt_venue_settings,
    compare_settings,
    mismatch_alerts,
    settings_from_rows,
    settle_mismatches,
    wanted_settings,
)
from kinetic_empire.risk import RiskConfig
from tests.support.risk_fakes import Harness, only_denial, only_request

FIL, NEAR = "FILUSDT", "NEARUSDT"
CROSS, ISO = MarginType.CROSSED, MarginType.ISOLATED
# 500 FIL at 2.0 at 20x: isolated, liquidation 4.4 % away (denied at 5 %); cross, the wallet backs it (allowed)
BASE = {"sizing": {"method": "fixed_notional", "notional": 1000}, "leverage": {FIL: 20},
        "guards": {"min_liquidation_distance_pct": 5}, "margin_type": {FIL: "ISOLATED"}}
API = Path(__file__).parents[1] / "data" / "api"  # real payloads (copied from the Binance reference material)
REFUSED = "-4048 Margin type cannot be changed if there exists position."


def test_matching_settings_are_no_mismatch() -> None:
    wanted = {FIL: SymbolSettings(ISO, 20), NEAR: SymbolSettings(CROSS, 2)}
    assert compare_settings(wanted, dict(wanted)) == []
    cfg = RiskConfig.from_mapping(BASE)
    assert settle_mismatches(cfg, wanted, [], adopt=False) is cfg


def test_each_differing_setting_is_named_with_wanted_actual_and_the_refusal() -> None:
    wanted = {FIL: SymbolSettings(ISO, 20), NEAR: SymbolSettings(CROSS, 2)}
    actual = {FIL: SymbolSettings(CROSS, 20), NEAR: SymbolSettings(CROSS, 5)}
    got = compare_settings(wanted, actual, {(FIL, "margin type"): REFUSED})
    assert got == [SettingMismatch(FIL, "margin type", "ISOLATED", "CROSSED", REFUSED),
                   SettingMismatch(NEAR, "leverage", "2x", "5x")]
    assert got[0].message == f"FILUSDT margin type: configured ISOLATED, the venue has CROSSED (the change was " \
                             f"refused: {REFUSED})"
    assert "risk.margin_type.FILUSDT: CROSSED" in got[0].hint and "risk.leverage.NEARUSDT: 5," in got[1].hint
    # a symbol the venue does not report: both settings unknown
    assert [(m.setting, m.actual) for m in compare_settings(wanted, {NEAR: actual[NEAR]})][:2] == [
        ("margin type", "not reported"), ("leverage", "not reported")]


def test_refuse_is_the_default_and_names_every_mismatch_and_its_fix() -> None:
    cfg = RiskConfig.from_mapping(BASE)
    mismatch = [SettingMismatch(FIL, "margin type", "ISOLATED", "CROSSED", REFUSED)]
    with pytest.raises(KineticError) as err:
        settle_mismatches(cfg, {FIL: SymbolSettings(CROSS, 20)}, mismatch, adopt=False)
    text = str(err.value)
    assert "not starting" in text and "configured ISOLATED, the venue has CROSSED" in text
    assert "fix: close FILUSDT's position and open orders" in text


def test_adopt_makes_the_liquidation_guard_use_the_venues_margin_type() -> None:
    cfg = RiskConfig.from_mapping(BASE)
    assert only_denial(Harness(cfg).intent("OPEN_LONG", FIL, 2.0)).code == "LIQUIDATION_TOO_CLOSE"  # isolated
    actual = {FIL: SymbolSettings(CROSS, 20), NEAR: SymbolSettings(CROSS, 1)}
    mismatches = compare_settings(wanted_settings([FIL, NEAR], cfg, {FIL: 20, NEAR: 1}), actual)
    adopted = settle_mismatches(cfg, actual, mismatches, adopt=True)
    assert adopted.margin_type_for(FIL) is CROSS and adopted.margin_type_for(NEAR) is CROSS
    assert only_request(Harness(adopted).intent("OPEN_LONG", FIL, 2.0))  # cross: the account's wallet backs it


def test_adopt_the_other_way_makes_the_guard_stricter() -> None:
    cfg = RiskConfig.from_mapping({**BASE, "margin_type": {}})  # configured cross: allowed
    assert only_request(Harness(cfg).intent("OPEN_LONG", FIL, 2.0))
    actual = {FIL: SymbolSettings(ISO, 20)}
    adopted = settle_mismatches(cfg, actual, compare_settings({FIL: SymbolSettings(CROSS, 20)}, actual), adopt=True)
    assert only_denial(Harness(adopted).intent("OPEN_LONG", FIL, 2.0)).code == "LIQUIDATION_TOO_CLOSE"


def test_adopt_takes_the_venues_leverage_only_where_it_differs() -> None:
    cfg = RiskConfig.from_mapping({**BASE, "leverage": {FIL: 20, NEAR: 3}})
    actual = {FIL: SymbolSettings(ISO, 10), NEAR: SymbolSettings(CROSS, 3)}
    wanted = wanted_settings([FIL, NEAR], cfg, {FIL: 20, NEAR: 3})
    adopted = adopt_venue_settings(cfg, actual, compare_settings(wanted, actual))
    assert (adopted.leverage_for(FIL), adopted.leverage_for(NEAR)) == (10, 3)
    assert adopted.margin_type_for(FIL) is ISO
    with pytest.raises(KineticError, match="did not report"):
        adopt_venue_settings(cfg, {}, compare_settings(wanted, {}))


def test_one_alert_per_mismatch() -> None:
    mismatches = [SettingMismatch(FIL, "margin type", "ISOLATED", "CROSSED", REFUSED),
                  SettingMismatch(FIL, "leverage", "20x", "10x")]
    alerts = mismatch_alerts(mismatches, 123, adopted=True)
    assert [(a.kind, a.symbol, a.severity, a.ts_event) for a in alerts] == [
        ("margin_type_mismatch", FIL, "warning", 123), ("leverage_mismatch", FIL, "warning", 123)]
    assert alerts[0].message.endswith("; the risk gate uses the venue's setting")


def test_real_payloads_are_read_back() -> None:
    risk = json.loads((API / "positionRisk" / "GET_fapi_v2_positionRisk.one_way.nautilus.json").read_text())
    assert settings_from_rows(risk, ["BTCUSDT"]) == {"BTCUSDT": SymbolSettings(ISO, 10)}  # "isolated", "10"
    config = json.loads((API / "symbolConfig" / "GET_fapi_v1_symbolConfig.nautilus.json").read_text())
    assert settings_from_rows(config, ["BTCUSDT", "ETHUSDT"]) == {  # "CROSSED"/"ISOLATED", numbers
        "ETHUSDT": SymbolSettings(CROSS, 20), "BTCUSDT": SymbolSettings(ISO, 25)}
    assert settings_from_rows(config[0], ["ETHUSDT"]) == {"ETHUSDT": SymbolSettings(CROSS, 20)}  # one object
    with pytest.raises(KineticError, match=r"unreadable margin type or leverage.*'portfolio'"):
        settings_from_rows([{**config[0], "marginType": "portfolio"}], ["ETHUSDT"])
    with pytest.raises(KineticError, match="unreadable margin type or leverage"):
        settings_from_rows([{"symbol": "ETHUSDT", "marginType": "cross"}], ["ETHUSDT"])  # no leverage
