"""The dashboard in a real browser against a real ``kinetic run`` on the local sandbox.

It loads with no console errors; a manual order sent from the page fills, and the fill shows in the fills,
the positions (with its stop and target) and the equity within 2 s, all from the event stream; pause turns
the risk state to REDUCING in the page and in the API; a dropped connection resumes from Last-Event-ID with
nothing lost; flatten asks first; the runs page lists the run and opens a backtest's report. Screenshots go
to $KINETIC_TEST_ARTIFACTS (default tests/artifacts/).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.browser.harness import BACKTEST_ID, CHROMIUM, HANG_S, Browser, LiveRun, artifacts_dir
from tests.browser.proxy import CuttableRelay, relay_to

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (CI installs it)"),
]

FILL_WITHIN_MS = 2000  # the bound from a fill to the page showing it
HANG_MS = HANG_S * 1000


def api_get(run: LiveRun, path: str) -> Any:
    r = httpx.get(run.base + path, headers={"Authorization": f"Bearer {run.token}"}, timeout=HANG_S)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def wait_js(page: Any, js: str, arg: Any = None, *, what: str, timeout_ms: float = HANG_MS) -> Any:
    """The truthy value of ``js`` once it has one; an AssertionError naming ``what`` if it never does."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(js, arg=arg, timeout=timeout_ms).json_value()
    except PlaywrightTimeout:
        raise AssertionError(f"never happened: {what}") from None


# Installed before the order is sent: times, on the page's own clock, the order's answer and the first moment
# the fills table, the positions table and the equity (an account message at or after the fill) each show it.
# Each is noted when first seen: the fills table lists only the newest rows, and the strategy's own fills on the
# other symbol can push the order's fill out of it before a slow poll looks (seen on a loaded machine).
WATCH_FILL = """() => {
  const result = document.querySelector('#order-result');
  let answered = null, fillAt = null, fillTs = null, posAt = null, eqAt = null, equity = null;
  const check = () => {
    if (window.__fillSeen) return;
    if (answered === null && result.dataset.state) answered = performance.now();
    const cid = result.dataset.cid;
    if (answered === null || !cid) return;
    const now = performance.now();
    const fill = document.querySelector(`#fills tr[data-cid="${cid}"]`);
    if (fill && fillAt === null) { fillAt = now; fillTs = Number(fill.dataset.ts); window.__fillRow = cid; }
    const pos = document.querySelector('#positions tr[data-symbol="NEARUSDT"]');
    if (fillAt !== null && pos && posAt === null) posAt = now;
    const eq = document.querySelector('#k-equity');
    if (fillAt !== null && eqAt === null && Number(eq.dataset.ts) >= fillTs) { eqAt = now; equity = eq.textContent; }
    if (fillAt === null || posAt === null || eqAt === null) return;
    window.__fillSeen = {answered, at: Math.max(fillAt, posAt, eqAt), qty: pos ? pos.dataset.qty : null, equity,
                         fillTs};
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      characterData: true});
}"""


# The candles chart once it shows ``symbol`` with at least ``markers`` fill markers and exactly ``lines``
# (entry/stop/target): what plotly holds and drew (one SVG path per candle).
CHART_STATE = """want => {
  const el = document.querySelector('#candles');
  if (!el || el.dataset.symbol !== want.symbol || !el.data) return null;
  const candles = el.data.find((t) => t.type === 'candlestick');
  const count = (name) => (el.data.find((t) => t.name === name) || {x: []}).x.length;
  const state = {candles: candles ? candles.x.length : 0, markers: Number(el.dataset.fillMarkers || 0),
    entries: count('long entry') + count('short entry'), exits: count('exit'),
    paths: el.querySelectorAll('.boxlayer .trace path').length, lines: el.dataset.lines,
    shapes: (el.layout.shapes || []).map((s) => s.y0), gaps: 0};
  const t = candles ? candles.x.map((x) => Date.parse(x.replace(' ', 'T') + 'Z')) : [];
  state.first = t.length ? t[0] : null;
  for (let i = 1; i < t.length; i++) if (t[i] - t[i - 1] !== 60000) state.gaps += 1;
  return state.candles && state.markers >= want.markers && state.lines === want.lines ? state : null;
}"""


def newest_closed(run: LiveRun, symbol: str = "NEARUSDT") -> int:
    """The open time of the newest closed kline the run holds for ``symbol``."""
    return int(api_get(run, f"/api/klines?symbol={symbol}&limit=1")["klines"][-1]["open_time"])


def poll(page: Any, condition: Any, what: str) -> None:
    """Let the page and its event handlers run until ``condition()`` holds (HANG_S turns a hang into a failure)."""
    for _ in range(int(HANG_MS / 20)):
        if condition():
            return
        page.wait_for_timeout(20)
    raise AssertionError(f"never happened: {what}")


def open_with_a_late_stream(context: Any, base: str, run: LiveRun) -> tuple[Any, int]:
    """A new dashboard page whose event stream is held back until a kline has closed after every history read
    the page made before it (the race a loaded machine runs: the history answered, then a kline closes, then the
    stream subscribes); returns the page and the open time of the newest kline closed while the stream was held.

    A page that reads its history only once the stream is subscribed reads none while the stream is held."""
    page = context.new_page()
    held: list[Any] = []
    asked: list[Any] = []
    answered: list[Any] = []
    page.route("**/api/stream", lambda route: held.append(route))
    page.on("request", lambda r: "/api/klines" in r.url and asked.append(r))
    page.on("requestfinished", lambda r: "/api/klines" in r.url and answered.append(r))
    page.goto(base + "/")
    poll(page, lambda: bool(held), "the page asking for its event stream")
    start = newest_closed(run)
    poll(page, lambda: newest_closed(run) > start, "a kline closing while the stream is held")
    if asked:  # histories read before the stream: a kline closes after their answers, before the subscription
        poll(page, lambda: len(answered) >= len(asked), "the history's answers")
        after = newest_closed(run)
        poll(page, lambda: newest_closed(run) > after, "a kline closing after the history's answers")
    late = newest_closed(run)
    held[0].continue_()
    page.unroute("**/api/stream")  # a reconnect goes straight through
    return page, late


def candles_match_the_run(page: Any, run: LiveRun, *, after: int, symbol: str = "NEARUSDT") -> None:
    """Once the page's chart shows a kline newer than ``after``: no candle missing, and every candle but the last
    (which may be in progress) equal to the run's closed kline of that minute (none left stale)."""
    wait_js(page, """want => {
      const el = document.querySelector('#candles');
      const c = el && el.dataset.symbol === want.symbol && el.data && el.data.find((t) => t.type === 'candlestick');
      if (!c || c.x.length < 2) return false;
      return Date.parse(c.x[c.x.length - 2].replace(' ', 'T') + 'Z') > want.after;
    }""", {"symbol": symbol, "after": after}, what=f"a closed {symbol} candle newer than {after} on the chart")
    drawn = page.evaluate("""() => {
      const c = document.querySelector('#candles').data.find((t) => t.type === 'candlestick');
      return c.x.map((x, i) => [Date.parse(x.replace(' ', 'T') + 'Z'), c.open[i], c.high[i], c.low[i], c.close[i]]);
    }""")
    times = [row[0] for row in drawn]
    assert all(b - a == 60_000 for a, b in itertools.pairwise(times)), f"candles missing: {times}"
    run_klines = {int(k["open_time"]): [float(k[f]) for f in ("open", "high", "low", "close")]
                  for k in api_get(run, f"/api/klines?symbol={symbol}&limit=500")["klines"]}
    stale = [row for row in drawn[:-1] if row[0] in run_klines and run_klines[row[0]] != pytest.approx(row[1:])]
    assert not stale, f"candles drawn with values other than the run's closed klines: {stale[:3]}"
    assert times[-2] in run_klines, (times[-2], max(run_klines))


def test_dashboard_follows_a_live_run(live_run: LiveRun, browser: Browser) -> None:
    with relay_to(live_run.port) as relay:  # the browser reaches the run through a relay the test can cut
        try:
            follow(live_run, browser, relay)
        except BaseException:
            browser.page.screenshot(path=str(artifacts_dir() / "dashboard-failed.png"), full_page=True)
            raise


def follow(live_run: LiveRun, browser: Browser, relay: CuttableRelay) -> None:
    page = browser.page
    base = f"http://127.0.0.1:{relay.port}"
    page.goto(live_run.login_url.replace(live_run.base, base))
    assert page.url.rstrip("/") == base, "the login link lands on the dashboard"
    assert live_run.token not in page.url

    # the stream is live and the snapshot filled the page
    page.wait_for_selector("#stream-state.pill-ok", timeout=HANG_MS)
    page.wait_for_selector('#risk-state[data-state="ACTIVE"]', timeout=HANG_MS)
    page.wait_for_selector('#h-feed[data-connected="true"]', timeout=HANG_MS)
    assert page.inner_text("#run-id") == live_run.run_id
    # the chart opens with the run's history (GET /api/klines: the 60 klines of warm-up), not only what streams in
    wait_js(page, "() => Number(document.querySelector('#candles').dataset.klines) >= 50", what="candles drawn")
    wait_js(page, "() => document.querySelector('#of-symbol option[value=NEARUSDT]') !== null",
            what="NEARUSDT in the order form")

    # a manual market buy with a protective stop, sent from the page's order form
    last = Decimal(str(api_get(live_run, "/api/market?symbol=NEARUSDT")["last_price"]))
    # far enough not to trigger during the test
    stop, target = ((last * Decimal(f)).quantize(Decimal("0.001")) for f in ("0.9", "1.1"))
    page.select_option("#of-symbol", "NEARUSDT")
    page.select_option("#order-form select[name=side]", "BUY")
    page.fill("#order-form input[name=qty]", "50")
    page.fill("#order-form input[name=stop]", str(stop))
    page.fill("#order-form input[name=target]", str(target))
    page.evaluate(WATCH_FILL)
    page.click("#order-form button[type=submit]")
    state = wait_js(page, "() => document.querySelector('#order-result').dataset.state", what="the order's answer")
    cid = page.get_attribute("#order-result", "data-cid")
    assert state in ("ACCEPTED", "PARTIALLY_FILLED", "FILLED"), page.inner_text("#order-result")

    # fill, position (with its stop) and equity, each from the stream, within 2 s of the order's answer
    # (the fill comes after the answer), timed in the page by the watcher
    wait_js(page, "cid => window.__fillRow === cid", cid, what="the fill in the fills")
    try:
        shown = wait_js(page, "() => window.__fillSeen || null", what="the fill everywhere",
                        timeout_ms=5 * FILL_WITHIN_MS)
    except AssertionError:
        missing = page.evaluate("""() => ({
            position: !!document.querySelector('#positions tr[data-symbol="NEARUSDT"]'),
            equity_ts: document.querySelector('#k-equity').dataset.ts})""")
        raise AssertionError(f"the fill showed in the fills but not in all of the page: {missing}") from None
    took_ms = shown["at"] - shown["answered"]
    assert took_ms <= FILL_WITHIN_MS, f"the page showed the fill {took_ms:.0f} ms after the order's answer"
    assert Decimal(shown["qty"]) == 50, shown
    positions = {p["symbol"]: p for p in api_get(live_run, "/api/positions")["positions"]}
    assert Decimal(positions["NEARUSDT"]["quantity"]) == 50
    wait_js(page, "stop => Number(document.querySelector('#positions tr[data-symbol=\"NEARUSDT\"] td.stop')"
            ".textContent) === stop", float(stop), what="the position's stop")
    assert Decimal(page.inner_text('#positions tr[data-symbol="NEARUSDT"] td.target')) == target

    # the NEARUSDT chart: candles, the fill as an entry marker, the position's entry, stop and target as lines
    page.click('#symbol-tabs button[data-symbol="NEARUSDT"]')
    drawn = wait_js(page, CHART_STATE, {"symbol": "NEARUSDT", "markers": 1, "lines": "entry stop target"},
                    what="the NEARUSDT chart with its candles, the fill and the position's lines")
    assert drawn["candles"] >= 50 and drawn["paths"] >= 50 and drawn["entries"] == 1, drawn
    assert drawn["gaps"] == 0, f"candles missing between the history and the stream: {drawn}"
    assert abs(drawn["shapes"][1] - float(stop)) < 1e-9 and abs(drawn["shapes"][2] - float(target)) < 1e-9, drawn
    # the fee reaches the wallet with the venue's balance update, which may come after the fill's
    for _ in range(int(HANG_MS / 50)):
        account = api_get(live_run, "/api/account")
        if Decimal(account["wallet_balance"]) < Decimal(account["initial_balance"]):
            break
        page.wait_for_timeout(50)
    assert Decimal(account["wallet_balance"]) < Decimal(account["initial_balance"]), "the fill's fee is booked"

    # pause: REDUCING in the page (from the stream) and in the API
    page.click('#controls button[data-action="pause"]')
    page.wait_for_selector('#risk-state[data-state="REDUCING"]', timeout=HANG_MS)
    assert api_get(live_run, "/api/status")["risk"]["state"] == "REDUCING"

    page.screenshot(path=str(artifacts_dir() / "dashboard.png"), full_page=True)

    # a dropped connection: the page reconnects with Last-Event-ID and the run replays what it missed
    # (no new snapshot, no gap in the ids), then goes on following the stream
    assert page.get_attribute("body", "data-stream-connects") == "1"
    last_id = int(page.get_attribute("body", "data-last-event-id") or 0)
    before = len(browser.errors)
    assert relay.cut() > 0
    wait_js(page, "() => document.body.dataset.streamConnects === '2'", what="the stream reconnected")
    # chromium itself logs the requests the cut broke (the stream, maybe a /metrics read); nothing else
    dropped = browser.errors[before:]
    del browser.errors[before:]
    assert all(e.startswith("console.error: Failed to load resource: net::ERR_") and
               e.endswith(("/api/stream", "/metrics")) for e in dropped), dropped
    wait_js(page, "n => Number(document.body.dataset.lastEventId) > n", last_id, what="events after the reconnect")
    assert page.get_attribute("body", "data-snapshots") == "1", "resumed from Last-Event-ID, not a new snapshot"
    assert page.get_attribute("body", "data-gaps") is None, "no message lost across the reconnect"

    # flatten asks first: cancelling the dialog changes nothing, confirming closes the position
    page.click('#controls button[data-action="flatten"]')
    page.wait_for_selector("#confirm[open]", timeout=HANG_MS)
    page.click('#confirm button[value="cancel"]')
    page.wait_for_selector("#confirm", state="hidden", timeout=HANG_MS)
    assert page.query_selector('#positions tr[data-symbol="NEARUSDT"]') is not None
    page.click('#positions tr[data-symbol="NEARUSDT"] button')
    page.wait_for_selector("#confirm[open]", timeout=HANG_MS)
    assert page.input_value("#confirm-symbol") == "NEARUSDT"
    page.click("#confirm-ok")
    page.wait_for_selector('#positions tr[data-symbol="NEARUSDT"]', state="detached", timeout=HANG_MS)
    assert "NEARUSDT" not in {p["symbol"] for p in api_get(live_run, "/api/positions")["positions"]}

    # a page opened now draws the NEARUSDT fills (entry and flatten's exit) from the history, and no lines; its
    # stream connects late (after a kline closed since any history it read), and no candle is lost or stale
    fresh, late = open_with_a_late_stream(page.context, base, live_run)
    fresh.wait_for_selector("#stream-state.pill-ok", timeout=HANG_MS)
    fresh.click('#symbol-tabs button[data-symbol="NEARUSDT"]')
    again = wait_js(fresh, CHART_STATE, {"symbol": "NEARUSDT", "markers": 1, "lines": ""},
                    what="a new page's NEARUSDT chart with the exit marked")
    # both markers come with the one history answer; the entry is on the chart unless the run (300 klines a
    # second) has gone past the 500 the page keeps since it, which a loaded machine can take long enough for
    entry_on_chart = int(shown["fillTs"]) >= again["first"]
    assert again["entries"] == int(entry_on_chart) and again["exits"] == 1 and again["shapes"] == [], again
    candles_match_the_run(fresh, live_run, after=late)
    fresh.close()

    # resume: back to ACTIVE
    page.click('#controls button[data-action="resume"]')
    page.wait_for_selector('#risk-state[data-state="ACTIVE"]', timeout=HANG_MS)

    # the runs page lists this run and the saved backtest, whose report opens
    page.goto(base + "/runs")
    page.wait_for_selector("body[data-loaded]", timeout=HANG_MS)
    assert page.inner_text(f'#runs tr[data-id="{live_run.run_id}"][data-kind="live"] a.report-link') == \
        "live now: dashboard"
    backtest = page.inner_text(f'#runs tr[data-id="{BACKTEST_ID}"][data-kind="backtest"]')
    assert "2023-08-01 05:00" in backtest and "—" not in backtest, backtest  # start and figures from metrics.json
    with page.context.expect_page() as opened:
        page.click(f'#runs tr[data-id="{BACKTEST_ID}"][data-kind="backtest"] a.report-link')
    report = opened.value
    report.wait_for_load_state()
    assert report.url.endswith(f"/reports/backtests/{BACKTEST_ID}/report.html")
    assert "Total return" in report.inner_text("body")
    page.screenshot(path=str(artifacts_dir() / "runs.png"), full_page=True)

    assert browser.errors == [], browser.errors
    print(f"fill shown {took_ms:.0f} ms after the order's answer")
