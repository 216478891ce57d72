/* The live dashboard's view: the first REST reads (what the stream does not carry: config, equity so far,
 * closed trades, alerts), then the event stream into the model (state.js), and each panel redrawn when
 * the model says it changed, at most once a frame (charts at most four times a second). */
"use strict";

(() => {
  const { num, fmt, plain, pct, ms, utc, duration, tone, toneClass, setText, h, toast, api, syncTable } = KE;
  const CHART_EVERY_MS = 250;

  // ------------------------------------------------------------------ model, stream, commands
  const dirty = new Set();
  const mark = (...panels) => { for (const p of panels) dirty.add(p); schedule(); };
  // The histories (GET /api/klines, /api/equity) are read only once the stream's snapshot has arrived: the
  // server sends it after subscribing this client, so from then on every kline reaches the page by the stream,
  // and a history read afterwards holds every kline before that. Read earlier, a kline closing between the
  // history's answer and the subscription reached the page by neither way (a missing candle, or a forming one
  // never replaced), which the browser test saw under load.
  let subscribed;
  const firstSnapshot = new Promise((resolve) => { subscribed = resolve; });
  const model = DashState(mark, {
    onHealth: () => refreshMetrics(),
    onSnapshot: (n) => { if (n > 1) refill(); else subscribed(); }, // a later one follows a gap: reread
  });
  const { S } = model;
  const controls = Controls(() => S.symbols);
  const view = { connects: 0, mon: null, pingMs: undefined };

  const stream = EventStream("/api/stream", {
    onMessage(name, id, msg) {
      model.apply(name, id, msg);
      // for whoever watches the page (the browser test): where the stream is
      Object.assign(document.body.dataset, { lastEventId: S.lastId || "", snapshots: String(S.snapshots) });
      if (S.gaps) document.body.dataset.gaps = String(S.gaps);
    },
    onState(state, connects) {
      view.connects = connects;
      document.body.dataset.streamConnects = String(connects);
      const el = setText("stream-state", state === "unauthorised" ? "not logged in" : state);
      el.className = "pill " + (state === "live" ? "pill-ok" : state === "reconnecting" ? "pill-warn" : "pill-bad");
      if (state === "unauthorised") loggedOut();
    },
  });

  const loggedOut = () => toast("Not logged in: open the dashboard link that `kinetic run` printed.", "bad");

  // ------------------------------------------------------------------ reads the stream does not carry
  /** The monitoring figures, from /metrics each time the stream brings a health message (one read at
   * a time; a failure leaves the last figures up). */
  let metricsInFlight = false;
  async function refreshMetrics() {
    if (metricsInFlight) return;
    metricsInFlight = true;
    try {
      const resp = await fetch("/metrics", { credentials: "same-origin", cache: "no-store" });
      if (resp.ok) {
        view.mon = Monitoring.summarise(await resp.text());
        mark("monitoring");
      }
    } catch (_) {
      /* the run is going away; the stream's state says so */
    } finally {
      metricsInFlight = false;
    }
  }

  async function ping() {
    const el = setText("h-ping", "…");
    try {
      view.pingMs = num((await api("/api/execution/ping")).round_trip_ms);
      setText(el, ms(view.pingMs));
    } catch (e) {
      setText(el, `failed: ${e.message}`);
    }
  }

  /** The chart's history of a symbol: its strategy's timeframe, as much as the dashboard keeps. */
  const klinesOf = (s) => api(`/api/klines?symbol=${encodeURIComponent(s)}&limit=500`);

  async function refill() {
    try {
      const [eq, alerts, ...charts] = await Promise.all([api("/api/equity"), api("/api/alerts"),
        ...S.symbols.map(klinesOf)]);
      model.loadEquity(eq);
      model.replaceAlerts(alerts.active || []);
      for (const c of charts) model.loadKlines(c);
    } catch (_) {
      /* the stream's state shows a lost connection */
    }
  }

  /** Config, alerts and markets; then the stream; once it is subscribed (its first snapshot), the histories
   * (equity, klines and fills), which merge with what the stream has brought meanwhile, so nothing closing
   * during the load is missed. */
  async function load() {
    try {
      model.setConfig(await api("/api/config"));
      const [alerts, ...markets] = await Promise.all([api("/api/alerts"),
        ...S.symbols.map((s) => api("/api/market?symbol=" + encodeURIComponent(s)))]);
      model.replaceAlerts(alerts.active || []);
      for (const m of markets) model.setMarket(m);
    } catch (e) {
      if (e.status === 401) return loggedOut();
      toast(`loading the run: ${e.message}`, "bad");
    }
    stream.run();
    await firstSnapshot;
    try {
      const [eq, ...charts] = await Promise.all([api("/api/equity"), ...S.symbols.map(klinesOf)]);
      model.loadEquity(eq);
      for (const c of charts) model.loadKlines(c); // history and fills as markers
    } catch (e) {
      toast(`loading the run's history: ${e.message}`, "bad");
    }
    mark(...Object.keys(RENDER));
    ping();
  }

  // ------------------------------------------------------------------ drawing
  let frame = 0, lastChart = 0, chartTimer = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const now = performance.now();
    const chartsDue = now - lastChart >= CHART_EVERY_MS;
    let chartsWaiting = false;
    for (const p of [...dirty]) {
      if ((p === "candles" || p === "equity") && !chartsDue) { chartsWaiting = true; continue; }
      dirty.delete(p);
      RENDER[p]();
    }
    if (chartsDue && !chartsWaiting) lastChart = now;
    if (chartsWaiting && !chartTimer) chartTimer = setTimeout(() => { chartTimer = 0; schedule(); }, CHART_EVERY_MS);
  }

  /** The position's protective order of a kind (STOP or TAKE_PROFIT): an open one that closes it. */
  function protection(symbol, kind) {
    for (const o of S.orders.values()) {
      if (o.symbol === symbol && String(o.type || "").startsWith(kind) && (o.close_position || o.reduce_only)) return o.stop_price;
    }
    return undefined;
  }

  const RENDER = {
    header() {
      setText("run-id", S.runId || "—");
      setText("venue", S.venue || "");
      setText("market-time", S.marketTime ? utc(S.marketTime, true) + " UTC" : "—");
      if (S.health.uptime_s !== undefined) setText("uptime", duration(S.health.uptime_s));
    },

    summary() {
      const a = S.account || {};
      const el = setText("k-equity", fmt(a.equity));
      el.dataset.ts = String(S.accountTs);
      setText("k-wallet", fmt(a.wallet_balance));
      tone(setText("k-upnl", fmt(a.unrealized_pnl, 2, true)), a.unrealized_pnl);
      setText("k-available", fmt(a.available_balance));
      setText("k-margin", fmt(a.margin_used));
      let peak = -Infinity;
      for (const p of S.equity) peak = Math.max(peak, p.equity);
      const last = S.equity[S.equity.length - 1];
      const dd = last && peak > 0 ? last.equity / peak - 1 : NaN;
      tone(setText("k-drawdown", pct(dd)), dd);
      setText("k-fills", String(S.fillCount));
    },

    equity() {
      Charts.equity(document.getElementById("equity"), S.equity);
      const first = S.equity[0], last = S.equity[S.equity.length - 1];
      if (first && last) {
        setText("equity-line", `${fmt(last.equity)} USDT · ${fmt(last.equity - first.equity, 2, true)} since ${utc(first.t, true)}`);
      }
    },

    candles() {
      const sym = S.active;
      const pos = S.positions.get(sym);
      const el = document.getElementById("candles"), klines = S.klines.get(sym) || [];
      const marks = S.marks.get(sym) || [];
      const lines = { entry: pos ? num(pos.entry) : NaN, stop: pos ? num(protection(sym, "STOP")) : NaN,
        target: pos ? num(protection(sym, "TAKE_PROFIT")) : NaN };
      // for whoever watches the page (the browser test): what the chart holds
      Object.assign(el.dataset, { symbol: sym || "", klines: String(klines.length),
        lines: Object.keys(lines).filter((k) => Number.isFinite(lines[k])).join(" ") });
      Charts.candles(el, sym, klines, marks, lines).then(() => {
        el.dataset.fillMarkers = String(Charts.markersShown(el));
      });
    },

    market() {
      const m = S.market.get(S.active) || {};
      const parts = [];
      if (m.last !== undefined) parts.push(`last ${plain(m.last)}`);
      if (m.mark !== undefined) parts.push(`mark ${plain(m.mark)}`);
      if (m.age !== undefined) parts.push(`lag ${fmt(m.age, 1)} s`);
      setText("market-line", parts.join(" · "));
    },

    tabs() {
      const box = document.getElementById("symbol-tabs");
      if (box.childElementCount !== S.symbols.length) {
        box.replaceChildren(...S.symbols.map((s) => h("button", {
          role: "tab", "data-symbol": s, onclick: () => { S.active = s; mark("candles", "market", "tabs"); },
        }, s)));
        document.getElementById("of-symbol").replaceChildren(...S.symbols.map((s) => h("option", { value: s }, s)));
      }
      for (const b of box.children) b.setAttribute("aria-selected", String(b.dataset.symbol === S.active));
    },

    positions() {
      const rows = [...S.positions.values()].sort((a, b) => a.symbol.localeCompare(b.symbol)).map((p) => {
        const m = S.market.get(p.symbol) || {};
        const last = m.last ?? p.last;
        const upnl = Number.isFinite(num(last)) ? (num(last) - num(p.entry)) * p.qty : p.upnl;
        const stop = protection(p.symbol, "STOP");
        const long = p.qty > 0;
        return { key: p.symbol, attrs: { "data-symbol": p.symbol, "data-qty": String(p.qty) }, cells: [
          { text: p.symbol }, { text: long ? "LONG" : "SHORT", cls: long ? "pos" : "neg" },
          { text: p.qtyText, cls: "r" }, { text: plain(p.entry), cls: "r" }, { text: plain(last), cls: "r" },
          { text: fmt(upnl, 2, true), cls: "r" + toneClass(upnl) },
          { text: stop === undefined ? "none" : plain(stop), cls: "r stop" + (stop === undefined ? " warn-text" : "") },
          { text: plain(protection(p.symbol, "TAKE_PROFIT")), cls: "r target" },
          { text: p.leverage ? p.leverage + "×" : "—", cls: "r" },
          { button: { label: "close", cls: "mini danger" }, cls: "r", onclick: () => controls.confirmFlatten(p.symbol) },
        ] };
      });
      syncTable(document.querySelector("#positions tbody"), rows, "flat", 10);
      setText("pos-count", String(S.positions.size));
    },

    orders() {
      const rows = [...S.orders.values()].map((o) => ({
        key: o.client_order_id, attrs: { "data-cid": o.client_order_id, title: o.strategy_id || "" }, cells: [
          { text: o.symbol }, { text: o.side || "—", cls: o.side === "BUY" ? "pos" : "neg" }, { text: o.type || "—" },
          { text: o.close_position ? "close" : plain(o.quantity), cls: "r" },
          { text: plain(o.price ?? o.stop_price), cls: "r" }, { text: o.state }, { text: o.client_order_id, cls: "mono small" },
          { button: { label: "cancel", cls: "mini" }, cls: "r", onclick: () => controls.cancelOrder(o.client_order_id) },
        ] }));
      syncTable(document.querySelector("#orders tbody"), rows, "no open orders", 8);
      setText("order-count", String(S.orders.size));
    },

    fills() {
      const rows = S.fills.slice(0, 14).map((f) => ({
        key: f.key, attrs: { "data-cid": f.cid, "data-ts": String(f.t), title: f.cid }, cells: [
          { text: utc(f.t) }, { text: f.symbol }, { text: f.side, cls: f.side === "BUY" ? "pos" : "neg" },
          { text: f.qty, cls: "r" }, { text: f.priceText, cls: "r" },
          { text: f.exit ? fmt(f.pnl, 2, true) : "", cls: "r" + toneClass(f.pnl) },
        ] }));
      syncTable(document.querySelector("#fills tbody"), rows, "no fills yet", 6);
    },

    risk() {
      const el = setText("risk-state", S.risk.state || "—");
      el.dataset.state = S.risk.state;
      const per = Object.entries(S.risk.symbols).filter(([, v]) => v && v !== S.risk.state).map(([k, v]) => `${k} ${v}`);
      const d = S.risk.denial;
      const parts = [S.risk.feedStale ? "feed stale" : "", S.risk.cause, ...per, d ? `last denial: ${d.symbol} ${d.code}` : ""];
      const cause = setText("risk-cause", parts.filter(Boolean).join(" · "));
      cause.title = d ? `${d.strategy_id} ${d.symbol}: ${d.message}` : "";
    },

    health() {
      const stream = (obj, id, count) => {
        const el = document.getElementById(id);
        if (!obj) return;
        el.replaceChildren(h("span", { class: "dot " + (obj.connected ? "ok" : "bad") }), obj.connected ? "connected" : "DOWN",
          h("span", { class: "muted" }, ` · ${count(obj)}, ${plain(obj.reconnects ?? 0)} reconnects`));
        el.dataset.connected = String(Boolean(obj.connected));
      };
      const feed = S.health.market_stream;
      stream(feed, "h-feed", (o) => `${plain(o.klines ?? 0)} klines`);
      stream(S.health.user_stream, "h-user", (o) => `${plain(o.events ?? 0)} events`);
      const ages = Object.values((feed && feed.age_s) || {}).map(num).filter(Number.isFinite);
      const stale = (feed && feed.stale) || [];
      const lag = setText("h-lag", ages.length ? `${fmt(Math.max(...ages), 1)} s since the last kline` : "—");
      if (stale.length) lag.replaceChildren(h("span", { class: "neg" }, `stale: ${stale.join(", ")}`));
      RENDER.header();
    },

    monitoring() {
      const m = view.mon;
      if (!m) return;
      const pair = (x, y) => (Number.isNaN(x) ? "—" : `${ms(x)} / ${ms(y)}`);
      setText("m-latency", pair(m.restP50, m.restP99));
      setText("m-k2o", pair(m.k2oP50, m.k2oP99));
      setText("m-orders", `${fmt(m.placed, 0)} / ${fmt(m.filled, 0)}` + (Number.isNaN(m.fillRate) ? "" : ` (${pct(m.fillRate, 0)})`));
      tone(setText("m-reject", pct(m.rejectRate) + (m.rejected ? ` · ${fmt(m.rejected, 0)} rejected` : "")), -m.rejectRate);
      tone(setText("m-error", pct(m.errorRate) + ` of ${fmt(m.requests, 0)} requests`), -m.errorRate);
      setText("m-slippage", m.slippageN ? `${fmt(m.slippageAvg, 1)} / ${fmt(m.slippageP95, 1)} bps (${fmt(m.slippageN, 0)} fills)` : "no fills yet");
      const share = m.weightLimit > 0 ? m.weightUsed / m.weightLimit : NaN;
      setText("m-weight-text", Number.isNaN(share) ? "—" : `${fmt(m.weightUsed, 0)} / ${fmt(m.weightLimit, 0)}`);
      const bar = document.getElementById("m-weight-bar");
      bar.style.width = Number.isNaN(share) ? "0" : Math.min(100, share * 100) + "%";
      bar.className = share > 0.8 ? "bad" : share > 0.5 ? "warn" : "";
      if (!Number.isNaN(m.pingMs) && view.pingMs === undefined) setText("h-ping", ms(m.pingMs));
    },

    alerts() {
      const items = [...S.alerts.values()].sort((a, b) => num(b.ts_event) - num(a.ts_event)).map((a) =>
        h("li", { class: a.severity === "critical" ? "critical" : "warning", "data-kind": a.kind },
          h("b", {}, a.kind.replace(/_/g, " ")), a.symbol ? h("span", { class: "muted" }, " " + a.symbol) : null,
          h("div", { class: "small" }, a.message), h("div", { class: "muted small" }, utc(a.ts_event, true))));
      document.getElementById("alerts").replaceChildren(...(items.length ? items : [h("li", { class: "empty" }, "no active alerts")]));
      setText("alert-count", String(S.alerts.size)).classList.toggle("hot", S.alerts.size > 0);
    },
  };

  controls.wire();
  document.getElementById("h-ping").addEventListener("click", ping);
  load();
})();
