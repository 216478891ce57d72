"""A real backtest's report opened in headless Chromium at 1400 px: every chart drawn by the plotly.js
next to it (no network), and neither the page nor the trade table wider than the window."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.data import sample_data_dir
from kinetic_empire.strategy.registry import build_registry

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

# runs after the page's own script: measures what a reader at 1400 px would see
PROBE = """<script>
window.addEventListener('load', function () {
  var table = document.querySelector('.tall .scroll');
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = 'page=' + document.documentElement.scrollWidth + ' window=' + window.innerWidth +
    ' table=' + table.scrollWidth + '/' + table.clientWidth +
    ' plots=' + document.querySelectorAll('div.chart .main-svg').length +
    ' slots=' + document.querySelectorAll('div.chart[data-figure]').length +
    ' candles=' + document.querySelectorAll('div.chart g.trace.boxes').length +
    ' failed=' + document.querySelectorAll('.nojs').length;
  document.body.appendChild(out);
});
</script></body>"""


def render(folder: Path) -> dict[str, str]:
    page = folder / "probed.html"  # the report with the probe, next to it so plotly.min.js resolves the same
    page.write_text((folder / "report.html").read_text().replace("</body>", PROBE, 1))
    assert CHROMIUM is not None, "Debian's chromium is needed (CI installs it)"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout)
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    return dict(item.split("=", 1) for item in found.group(1).split())


def test_report_draws_offline_and_fits_1400_px(tmp_path: Path) -> None:
    config = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-01", "end": "2023-10-01"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"},
                       {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "15m"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 20}},
    })  # fmt: skip
    out = save_results(Backtest(config, build_registry()).run(), tmp_path, "run")
    seen = render(out)
    assert seen["failed"] == "0"
    assert int(seen["slots"]) == 6 and int(seen["plots"]) >= 6  # equity, monthly, 2 histograms, 2 price charts
    assert int(seen["candles"]) >= 2
    assert int(seen["page"]) <= int(seen["window"]) <= 1400
    scroll, client = map(int, seen["table"].split("/"))
    assert scroll <= client, f"the trade table overflows: {scroll} px in {client} px"

    # without plotly.min.js next to it the page says so instead of showing empty boxes
    (out / "plotly.min.js").unlink()
    seen = render(out)
    assert seen["failed"] == "6" and seen["plots"] == "0"
