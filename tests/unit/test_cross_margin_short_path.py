"""The solve's short path for a long its margin covers gives exactly the full solve's price, tier table or not."""

from __future__ import annotations

import numpy as np
import pytest

from kinetic_empire.core.liquidation import float_tiers, liquidation_price
from kinetic_empire.exchange.cross_margin import _alone
from kinetic_empire.resources import default_brackets

_TABLES = {
    "no brackets": float_tiers(None),
    "BTCUSDT": float_tiers(default_brackets()["BTCUSDT"]),
    "negative cum": ((1e4, 0.01, -5.0), (float("inf"), 0.02, 95.0)),  # not covered by the short path
    "rate of one": ((float("inf"), 1.0, 0.0),),
}


@pytest.mark.parametrize("table", list(_TABLES))
@pytest.mark.parametrize("seed", range(5))
def test_short_path_equals_the_full_solve(table: str, seed: int) -> None:
    tiers = _TABLES[table]
    rng = np.random.default_rng(seed)
    for _ in range(400):
        qty = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.001, 50))
        entry = float(rng.uniform(1, 60_000))
        notional = abs(qty) * entry
        margin = notional * float(rng.choice([0.05, 0.5, 0.999999, 1.0, 1.000001, 3.0]))
        got, want = _alone(qty, entry, margin, tiers), liquidation_price(qty, entry, margin, tiers)
        assert got == want and str(got) == str(want), (qty, entry, margin)


def test_negative_cum_long_covered_by_its_margin_still_has_a_liquidation_price() -> None:
    """Where the short path's premise fails (a negative cum) it must not answer 0.0."""
    tiers = _TABLES["negative cum"]
    assert liquidation_price(1.0, 100.0, 100.0, tiers) > 0.0
    assert _alone(1.0, 100.0, 100.0, tiers) == liquidation_price(1.0, 100.0, 100.0, tiers)
