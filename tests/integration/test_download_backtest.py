"""Round trip: download into a store, read it back, backtest from it; same trades as from the raw files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.data import KlineStore, sample_data_dir
from kinetic_empire.download import DownloadOptions, DownloadRequest, download, load_funding
from kinetic_empire.exchange import ExchangeConfig
from kinetic_empire.strategy.registry import build_registry
from tests.support.download import ARCHIVE, AppServer, Background, FixedClock, archive_app, ms

pytestmark = pytest.mark.integration  # downloads from an archive server on loopback


def config(data: str) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": data, "start": "2023-08-03", "end": "2023-10-01"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "fixed_notional", "notional": 1000}},
    })  # fmt: skip


def test_download_store_read_backtest(tmp_path: Path) -> None:
    bg = Background()
    server = AppServer(bg, archive_app(ARCHIVE))
    store = tmp_path / "store"
    try:
        download(DownloadRequest(("FILUSDT",), ("1m", "1h"), ms("2023-08-01"), ms("2023-10-01"), source="archive",
                                 mark=True),
                 DownloadOptions(root=store, archive_url=server.url, clock=FixedClock(ms("2024-01-01")),
                                 progress=False))
    finally:
        server.close()
        bg.close()

    assert len(KlineStore(store).read("FILUSDT", "1h", ms("2023-09-01"), ms("2023-10-01"))) == 720

    registry = build_registry()
    from_store = Backtest(config(str(store)), registry).run()  # the store root, with funding and mark beside it
    from_files = Backtest(config(str(sample_data_dir())), registry).run()
    # same klines, same trades; only funding differs: the store's downloaded series replaces the constant
    def shape(result):
        return [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.gross_pnl, t.fees)
                for t in result.portfolio.trades]  # fmt: skip

    assert shape(from_store) and shape(from_store) == shape(from_files)
    assert from_store.portfolio.funding_total != from_files.portfolio.funding_total
    applied = [t.funding for t in from_store.portfolio.trades if t.funding]
    assert applied, "the downloaded funding series was applied"

    # The funding series is in the shape the exchange model takes.
    rates = load_funding(store, "FILUSDT", "2023-08-03", "2023-10-01")
    cfg = ExchangeConfig(funding_rates={"FILUSDT": rates})
    assert cfg.funding_rates["FILUSDT"][ms("2023-08-03 08:00")] == Decimal("0.00008400")  # calc_time 1691049600001
    assert len(rates) == 3 * 59
