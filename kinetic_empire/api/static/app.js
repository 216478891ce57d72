/* The live dashboard: one state object fed by the server-sent event stream (after one REST load for
 * history the stream does not carry), rendered panel by panel when something changed.
 *
 * The stream is read with fetch() rather than EventSource so that a reconnect after any failure,
 * including a server restart, sends Last-Event-ID and the server replays what was missed. */
"use strict";

(() => {
  const { num, fmt, plain, pct, ms, utc, duration, tone, setText, h, toast, api } = KE;
  const MAX_KLINES = 400, MAX_FILLS = 60, MAX_EQUITY = 5000, CHART_EVERY_MS = 250;

  const S = {
    runId: null, venue: "", symbols: [], active: null, startedWall: null, marketTime: 0,
    account: null, accountTs: 0,
    positions: new Map(),      // symbol -> {symbol, qty, entry, leverage, mark, upnl, stop, ts}
    orders: new Map(),         // client_order_id -> order
    fills: [],                 // newest first
    fillCount: 0,
    klines: new Map(),         // symbol -> [{t, o, h, l, c}]
    marks: new Map(),          // symbol -> [{t, side, price, qty, exit, pnl}]
    market: new Map(),         // symbol -> {last, mark, lag}
    equity: [],                // [{t, equity}]
    risk: { state: "", cause: "", symbols: {} },
    health: {},
    mon: null,
    alerts: new Map(),         // kind|symbol -> alert
    lastId: null,
    applied: 0,
    connects: 0,
    snapshots: 0,
    gaps: 0,
  };

  // ------------------------------------------------------------------ normalising the server's shapes
  const pick = (o, ...names) => {
    if (!o) return undefined;
    for (const n of names) if (o[n] !== undefined && o[n] !== null) return o[n];
    return undefined;
  };
  const list = (v, ...keys) => (Array.isArray(v) ? v : (v && pick(v, ...keys)) || []);

  const toKline = (k) => Array.isArray(k)
    ? { t: num(k[0]), o: num(k[1]), h: num(k[2]), l: num(k[3]), c: num(k[4]) }
    : { t: num(pick(k, "open_time", "t")), o: num(pick(k, "open", "o")), h: num(pick(k, "high", "h")),
        l: num(pick(k, "low", "l")), c: num(pick(k, "close", "c")) };

  const toPosition = (p, ts) => ({
    symbol: p.symbol,
    qty: num(pick(p, "quantity", "qty", "position_amt", "positionAmt")),
    qtyText: plain(pick(p, "quantity", "qty", "position_amt", "positionAmt")),
    entry: pick(p, "entry_price", "entryPrice", "entry"),
    leverage: pick(p, "leverage"),
    mark: pick(p, "mark_price", "markPrice", "mark", "last_price"),
    upnl: pick(p, "unrealized_pnl", "unrealizedPnl", "upnl"),
    stop: pick(p, "stop_price", "stop", "stop_loss"),
    ts: num(pick(p, "ts_event")) || ts || 0,
  });

  const ORDER_DONE = new Set(["FILLED", "CANCELED", "CANCELLED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"]);
  const orderState = (o) => String(pick(o, "order_state", "state", "status") || "ACCEPTED").toUpperCase();

  // ------------------------------------------------------------------ applying events to the state
  const dirty = new Set();
  const mark = (...panels) => { for (const p of panels) dirty.add(p); schedule(); };

  function setPosition(p, ts) {
    const pos = toPosition(p, ts);
    if (!pos.symbol) return;
    const prev = S.positions.get(pos.symbol);
    if (pos.mark === undefined && prev) pos.mark = prev.mark;
    if (!pos.qty) S.positions.delete(pos.symbol);
    else S.positions.set(pos.symbol, pos);
    mark("positions", "candles");
  }

  function setOrder(o) {
    const id = pick(o, "client_order_id", "clientOrderId");
    if (!id) return;
    const state = orderState(o);
    if (ORDER_DONE.has(state) || o.open === false) S.orders.delete(id);
    else S.orders.set(id, Object.assign({}, S.orders.get(id) || {}, o, { _state: state }));
    mark("orders", "positions", "candles");
  }

  function addFill(f, ts) {
    const t = num(pick(f, "ts_event", "time", "ts")) || ts;
    const fill = {
      t, symbol: f.symbol, side: String(f.side || "").toUpperCase(),
      qty: plain(pick(f, "quantity", "qty", "last_qty")), price: num(pick(f, "price", "last_price")),
      priceText: plain(pick(f, "price", "last_price")),
      pnl: num(pick(f, "realized_pnl", "realizedPnl", "pnl")) || 0,
      cid: pick(f, "client_order_id", "clientOrderId") || "",
      strategy: pick(f, "strategy_id") || "",
    };
    fill.key = `${fill.cid}:${pick(f, "trade_id") ?? S.fillCount}`;
    fill.exit = Boolean(f.reduce_only) || fill.pnl !== 0;
    S.fills.unshift(fill);
    if (S.fills.length > MAX_FILLS) S.fills.length = MAX_FILLS;
    S.fillCount += 1;
    const arr = S.marks.get(fill.symbol) || [];
    arr.push(fill);
    S.marks.set(fill.symbol, arr.slice(-200));
    const o = S.orders.get(fill.cid);
    if (o && String(pick(f, "status")) === "FILLED") S.orders.delete(fill.cid);
    mark("fills", "candles", "orders", "summary");
  }

  function setAccount(a, ts) {
    S.account = a;
    S.accountTs = Math.max(S.accountTs, num(pick(a, "ts_event")) || ts || 0);
    const eq = num(pick(a, "equity", "total_equity"));
    if (Number.isFinite(eq)) {
      const t = S.accountTs || (S.equity.length ? S.equity[S.equity.length - 1].t : Date.now());
      const last = S.equity[S.equity.length - 1];
      if (last && last.t === t) last.equity = eq;
      else if (!last || t > last.t) S.equity.push({ t, equity: eq });
      if (S.equity.length > MAX_EQUITY) S.equity.splice(0, S.equity.length - MAX_EQUITY);
    }
    const positions = pick(a, "positions");
    if (Array.isArray(positions)) replacePositions(positions, ts);
    mark("summary", "equity");
  }

  function replacePositions(rows, ts) {
    const keep = new Map();
    for (const p of rows) {
      const pos = toPosition(p, ts);
      if (pos.symbol && pos.qty) keep.set(pos.symbol, pos);
    }
    S.positions = keep;
    mark("positions", "candles");
  }

  const tfMinutes = (tf) => {
    const m = /^(\d+)([mhdwM])$/.exec(String(tf || ""));
    return m ? Number(m[1]) * { m: 1, h: 60, d: 1440, w: 10080, M: 43200 }[m[2]] : Infinity;
  };
  const chartTf = new Map(); // symbol -> the shortest timeframe its strategies trade: the one charted

  function addKline(k) {
    const sym = k.symbol;
    if (!sym) return;
    if (k.timeframe) {
      const want = chartTf.get(sym);
      if (want === undefined) chartTf.set(sym, k.timeframe);
      else if (want !== k.timeframe) return;
    }
    const kl = toKline(k);
    if (!Number.isFinite(kl.t)) return;
    const arr = S.klines.get(sym) || [];
    const last = arr[arr.length - 1];
    if (last && last.t === kl.t) arr[arr.length - 1] = kl;
    else if (!last || kl.t > last.t) arr.push(kl);
    if (arr.length > MAX_KLINES) arr.splice(0, arr.length - MAX_KLINES);
    S.klines.set(sym, arr);
    addSymbol(sym);
    if (sym === S.active) mark("candles");
  }

  function setMarket(m) {
    const sym = m.symbol;
    if (!sym) return;
    const cur = S.market.get(sym) || {};
    const next = Object.assign(cur, {
      last: pick(m, "last_price", "price", "last") ?? cur.last,
      mark: pick(m, "mark_price", "mark") ?? cur.mark,
      lag: pick(m, "feed_age_s", "feed_lag_s") ?? cur.lag,
    });
    S.market.set(sym, next);
    const lastKline = pick(m, "last_kline", "kline");
    if (lastKline && typeof lastKline === "object") addKline(Object.assign({ symbol: sym }, lastKline));
    const klines = pick(m, "klines");
    if (Array.isArray(klines)) for (const k of klines) addKline(Object.assign({ symbol: sym }, Array.isArray(k) ? {} : k, Array.isArray(k) ? { open_time: k[0], open: k[1], high: k[2], low: k[3], close: k[4] } : {}));
    const pos = S.positions.get(sym);
    if (pos && next.mark !== undefined) pos.mark = next.mark;
    mark("market", "positions");
  }

  function setRisk(r) {
    const state = pick(r, "state", "trading_state");
    const change = r.change || null, denial = r.denial || null;
    if (change && change.symbol) S.risk.symbols[change.symbol] = change.state;
    else if (state) S.risk.state = String(state);
    if (change && !change.symbol) S.risk.cause = change.cause || "";
    const per = pick(r, "symbols");
    if (per && typeof per === "object" && !Array.isArray(per)) Object.assign(S.risk.symbols, per);
    S.risk.feedStale = Boolean(r.feed_stale);
    if (denial) {
      S.risk.denial = denial;
      S.risk.denials = (S.risk.denials || 0) + 1;
    }
    mark("risk");
  }

  function setHealth(hl) {
    Object.assign(S.health, hl);
    mark("health", "header");
    refreshMetrics();
  }

  /** The monitoring figures, fetched from /metrics each time the stream brings a health message (one
   * request at a time; a failure leaves the last figures up). */
  let metricsInFlight = false;
  async function refreshMetrics() {
    if (metricsInFlight) return;
    metricsInFlight = true;
    try {
      const resp = await fetch("/metrics", { credentials: "same-origin", cache: "no-store" });
      if (resp.ok) {
        S.mon = Monitoring.summarise(await resp.text());
        mark("monitoring");
      }
    } catch (_) {
      /* the run is going away; the stream's own state says so */
    } finally {
      metricsInFlight = false;
    }
  }

  async function ping() {
    const el = setText("h-ping", "…");
    try {
      const res = await api("/api/execution/ping");
      S.pingMs = num(res.round_trip_ms);
      setText(el, ms(S.pingMs));
    } catch (e) {
      setText(el, `failed: ${e.message}`);
    }
  }

  function setAlert(a) {
    const key = `${a.kind}|${a.symbol || ""}`;
    if (a.cleared) S.alerts.delete(key);
    else S.alerts.set(key, a);
    mark("alerts");
  }

  function applySnapshot(snap) {
    for (const [k, v] of Object.entries(snap || {})) {
      if (v === null || v === undefined) continue;
      if (k === "account") setAccount(v);
      else if (k === "positions") replacePositions(list(v, "positions"));
      else if (k === "orders") { S.orders.clear(); for (const o of list(v, "orders")) setOrder(o); mark("orders"); }
      else if (k === "risk") setRisk(v);
      else if (k === "health") setHealth(v);
      else if (k === "alerts") { S.alerts.clear(); for (const a of list(v, "alerts")) setAlert(a); }
      else if (k === "market") for (const m of Array.isArray(v) ? v : Object.values(v)) setMarket(m);
      else if (k === "fills" || k === "trades_recent") for (const f of list(v, "fills").slice().reverse()) addFill(f);
      else if (k === "equity") loadEquity(v);
    }
  }

  const HANDLERS = {
    market: (d) => setMarket(d),
    kline: (d) => addKline(d),
    order_update: (d) => setOrder(d),
    fill: (d, ts) => addFill(d, ts),
    account: (d, ts) => setAccount(d, ts),
    position: (d, ts) => setPosition(d, ts),
    risk: (d) => setRisk(d),
    health: (d) => setHealth(d),
    alert: (d) => setAlert(d),
    snapshot: (d) => {
      S.snapshots += 1;
      document.body.dataset.snapshots = String(S.snapshots);
      applySnapshot(d);
      if (S.snapshots > 1) refill(); // the stream started over: what it does not carry may have moved on
    },
  };

  /** Equity history and active alerts, which a snapshot does not carry, read again after one that
   * follows a gap (the first snapshot comes right after the page's own load). */
  async function refill() {
    try {
      const [eq, alerts] = await Promise.all([api("/api/equity"), api("/api/alerts")]);
      loadEquity(eq);
      S.alerts.clear();
      for (const a of list(alerts, "active")) setAlert(a);
      mark("alerts");
    } catch (_) {
      /* the stream's own state shows a lost connection */
    }
  }

  function onEvent(name, id, raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch (_) { return; }
    const data = msg && typeof msg === "object" && "data" in msg ? msg.data : msg;
    const ts = num(msg && msg.ts_event);
    if (Number.isFinite(ts) && ts > S.marketTime) { S.marketTime = ts; mark("header"); }
    const fn = HANDLERS[name] || HANDLERS[msg && msg.type];
    if (fn) fn(data || {}, ts);
    if (id) {
      // ids count up by one; a jump outside a snapshot means messages were lost (the page is then
      // only as good as the next snapshot, so say so)
      if (name !== "snapshot" && /^\d+$/.test(id) && /^\d+$/.test(S.lastId || "") && Number(id) !== Number(S.lastId) + 1) {
        S.gaps += 1;
        document.body.dataset.gaps = String(S.gaps);
      }
      S.lastId = id;
    }
    S.applied += 1;
    document.body.dataset.lastEventId = S.lastId || "";
  }

  // ------------------------------------------------------------------ the event stream
  let streamBackoff = 500;
  function streamState(text, cls) {
    const el = setText("stream-state", text);
    el.className = "pill " + cls;
  }

  async function stream() {
    for (;;) {
      const headers = { Accept: "text/event-stream" };
      if (S.lastId) headers["Last-Event-ID"] = S.lastId;
      try {
        const resp = await fetch("/api/stream", { headers, credentials: "same-origin", cache: "no-store" });
        if (resp.status === 401 || resp.status === 403) {
          streamState("not logged in", "pill-bad");
          toast("Not logged in: open the dashboard link that `kinetic run` printed.", "bad");
          return;
        }
        if (!resp.ok || !resp.body) throw new Error(`stream ${resp.status}`);
        streamState("live", "pill-ok");
        streamBackoff = 500;
        S.connects += 1;
        document.body.dataset.streamConnects = String(S.connects);
        await readEvents(resp.body);
      } catch (_) {
        /* the server went away or the network dropped: reconnect below */
      }
      streamState("reconnecting", "pill-warn");
      await new Promise((r) => setTimeout(r, streamBackoff));
      streamBackoff = Math.min(streamBackoff * 2, 8000);
    }
  }

  async function readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", id = null, name = "message", data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1));
        if (line === "") {
          if (data.length) onEvent(name, id, data.join("\n"));
          name = "message"; data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") data.push(val);
        else if (field === "event") name = val;
        else if (field === "id") id = val;
        else if (field === "retry" && /^\d+$/.test(val)) streamBackoff = Number(val);
      }
    }
  }

  // ------------------------------------------------------------------ rendering
  let frame = 0, lastChart = 0, chartTimer = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const now = performance.now();
    const charts = dirty.has("candles") || dirty.has("equity");
    for (const p of dirty) {
      if ((p === "candles" || p === "equity") && now - lastChart < CHART_EVERY_MS) continue;
      const fn = RENDER[p];
      if (fn) fn();
      dirty.delete(p);
    }
    if (charts) {
      if (now - lastChart >= CHART_EVERY_MS) lastChart = now;
      else if (!chartTimer) chartTimer = setTimeout(() => { chartTimer = 0; schedule(); }, CHART_EVERY_MS);
    }
  }

  /** The position's protective stop: its open stop order that closes or reduces it (the API's own stop
   * field is only a snapshot; the orders follow every change). */
  function targetOf(symbol) {
    for (const o of S.orders.values()) {
      const type = String(pick(o, "type", "order_type") || "");
      if (o.symbol === symbol && type.startsWith("TAKE_PROFIT") && (o.close_position || o.reduce_only)) {
        return pick(o, "stop_price", "trigger_price");
      }
    }
    return undefined;
  }

  function stopOf(symbol) {
    for (const o of S.orders.values()) {
      const type = String(pick(o, "type", "order_type") || "");
      if (o.symbol === symbol && type.startsWith("STOP") && (o.close_position || o.reduce_only)) {
        return pick(o, "stop_price", "trigger_price");
      }
    }
    const pos = S.positions.get(symbol);
    return S.orders.size === 0 && pos ? pos.stop : undefined;
  }

  const toneClass = (v) => (num(v) > 0 ? " pos" : num(v) < 0 ? " neg" : "");

  /** Bring a table body in line with ``rows`` in place: rows are kept by key and only changed cells are
   * touched, so a button under the pointer survives the many updates a second a live run brings.
   * rows: [{key, attrs, cells: [{text, cls} | {button, cls, onclick}]}] */
  function syncTable(tbody, rows, emptyText, cols) {
    if (!rows.length) {
      const only = tbody.firstElementChild;
      if (!(only && only.classList.contains("empty") && tbody.childElementCount === 1)) {
        tbody.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: cols }, emptyText)));
      }
      return;
    }
    const existing = new Map();
    for (const tr of [...tbody.children]) {
      if (tr.dataset.key !== undefined) existing.set(tr.dataset.key, tr);
      else tr.remove();
    }
    const seen = new Set();
    rows = rows.filter((r) => !seen.has(r.key) && seen.add(r.key));
    rows.forEach((row, i) => {
      let tr = existing.get(row.key);
      existing.delete(row.key);
      if (!tr) {
        tr = h("tr", { "data-key": row.key }, ...row.cells.map((c) => (c.button
          ? h("td", { class: c.cls || "" }, h("button", { class: c.button.cls, onclick: c.onclick }, c.button.label))
          : h("td", {}))));
      }
      for (const [k, v] of Object.entries(row.attrs || {})) if (tr.getAttribute(k) !== v) tr.setAttribute(k, v);
      row.cells.forEach((c, j) => {
        if (c.button) return;
        const td = tr.children[j];
        const text = String(c.text ?? "");
        if (td.textContent !== text) td.textContent = text;
        const cls = c.cls || "";
        if (td.className !== cls) td.className = cls;
      });
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const tr of existing.values()) tr.remove();
  }


  const RENDER = {
    header() {
      setText("run-id", S.runId || "—");
      setText("venue", S.venue || "");
      setText("market-time", S.marketTime ? utc(S.marketTime, true) + " UTC" : "—");
      const up = pick(S.health, "uptime_s", "uptime");
      if (up !== undefined) setText("uptime", duration(up));
    },

    summary() {
      const a = S.account || {};
      const eq = pick(a, "equity", "total_equity");
      const wallet = pick(a, "wallet_balance", "wallet", "walletBalance");
      const upnl = pick(a, "unrealized_pnl", "unrealizedPnl", "upnl") ?? (num(eq) - num(wallet));
      const el = setText("k-equity", fmt(eq));
      el.dataset.ts = String(S.accountTs);
      setText("k-wallet", fmt(wallet));
      tone(setText("k-upnl", fmt(upnl, 2, true)), upnl);
      setText("k-available", fmt(pick(a, "available_balance", "available", "availableBalance")));
      setText("k-margin", fmt(pick(a, "margin_used", "margin", "position_margin")));
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
        const ch = last.equity - first.equity;
        setText("equity-line", `${fmt(last.equity)} USDT · ${fmt(ch, 2, true)} since ${utc(first.t, true)}`);
      }
    },

    candles() {
      const sym = S.active;
      const pos = S.positions.get(sym);
      const el = document.getElementById("candles"), klines = S.klines.get(sym) || [];
      el.dataset.klines = String(klines.length);
      Charts.candles(el, sym, klines, S.marks.get(sym) || [],
        { entry: pos ? num(pos.entry) : NaN, stop: pos ? num(stopOf(sym)) : NaN });
    },

    market() {
      const m = S.market.get(S.active) || {};
      const parts = [];
      if (m.last !== undefined) parts.push(`last ${plain(m.last)}`);
      if (m.mark !== undefined) parts.push(`mark ${plain(m.mark)}`);
      if (m.lag !== undefined) parts.push(`lag ${fmt(m.lag, 1)} s`);
      setText("market-line", parts.join(" · "));
      RENDER.tabs();
    },

    tabs() {
      const box = document.getElementById("symbol-tabs");
      if (box.childElementCount !== S.symbols.length) {
        box.replaceChildren(...S.symbols.map((s) => h("button", {
          role: "tab", "data-symbol": s, onclick: () => { S.active = s; mark("candles", "market", "tabs"); },
        }, s)));
        const sel = document.getElementById("of-symbol");
        sel.replaceChildren(...S.symbols.map((s) => h("option", { value: s }, s)));
      }
      for (const b of box.children) b.setAttribute("aria-selected", String(b.dataset.symbol === S.active));
    },

    positions() {
      const rows = [...S.positions.values()].sort((a, b) => a.symbol.localeCompare(b.symbol)).map((p) => {
        const m = S.market.get(p.symbol) || {};
        const mk = m.last ?? m.mark ?? p.mark;
        const upnl = Number.isFinite(num(mk)) ? (num(mk) - num(p.entry)) * p.qty : p.upnl;
        const stop = stopOf(p.symbol);
        const long = p.qty > 0;
        return { key: p.symbol, attrs: { "data-symbol": p.symbol, "data-qty": String(p.qty) }, cells: [
          { text: p.symbol }, { text: long ? "LONG" : "SHORT", cls: long ? "pos" : "neg" },
          { text: p.qtyText, cls: "r" }, { text: plain(p.entry), cls: "r" }, { text: plain(mk), cls: "r" },
          { text: fmt(upnl, 2, true), cls: "r" + toneClass(upnl) },
          { text: stop === undefined ? "none" : plain(stop), cls: "r stop" + (stop === undefined ? " warn-text" : "") },
          { text: plain(targetOf(p.symbol)), cls: "r target" },
          { text: p.leverage ? p.leverage + "×" : "—", cls: "r" },
          { button: { label: "close", cls: "mini danger" }, cls: "r", onclick: () => confirmFlatten(p.symbol) },
        ] };
      });
      syncTable(document.querySelector("#positions tbody"), rows, "flat", 10);
      setText("pos-count", String(S.positions.size));
    },

    orders() {
      const rows = [...S.orders.values()].map((o) => {
        const cid = pick(o, "client_order_id", "clientOrderId");
        const price = pick(o, "price") ?? pick(o, "stop_price", "trigger_price");
        return { key: cid, attrs: { "data-cid": cid, title: o.strategy_id ? `${o.strategy_id}` : "" }, cells: [
          { text: o.symbol }, { text: o.side || "—", cls: o.side === "BUY" ? "pos" : "neg" },
          { text: pick(o, "type", "order_type") || "—" },
          { text: o.close_position ? "close" : plain(pick(o, "quantity", "qty", "orig_qty")), cls: "r" },
          { text: plain(price), cls: "r" }, { text: o._state }, { text: cid, cls: "mono small" },
          { button: { label: "cancel", cls: "mini" }, cls: "r", onclick: () => cancelOrder(cid) },
        ] };
      });
      syncTable(document.querySelector("#orders tbody"), rows, "no open orders", 8);
      setText("order-count", String(S.orders.size));
    },

    fills() {
      const rows = S.fills.slice(0, 14).map((f) => ({
        key: f.key,
        attrs: { "data-cid": f.cid, "data-ts": String(f.t), title: f.strategy ? `${f.strategy} · ${f.cid}` : f.cid },
        cells: [
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
      const parts = [S.risk.feedStale ? "feed stale" : "", S.risk.cause, ...per,
        d ? `last denial: ${d.symbol} ${d.code}` : ""].filter(Boolean);
      const cause = setText("risk-cause", parts.join(" · "));
      cause.title = d ? `${d.strategy_id} ${d.symbol}: ${d.message}` : "";
    },

    health() {
      const hl = S.health;
      const stream = (obj, id, count) => {
        const el = document.getElementById(id);
        if (!obj || typeof obj !== "object") { el.replaceChildren("—"); return; }
        const extra = [count(obj), `${plain(obj.reconnects ?? 0)} reconnects`].filter(Boolean);
        el.replaceChildren(h("span", { class: "dot " + (obj.connected ? "ok" : "bad") }),
          obj.connected ? "connected" : "DOWN", h("span", { class: "muted" }, " · " + extra.join(", ")));
        el.dataset.connected = String(Boolean(obj.connected));
      };
      const feed = pick(hl, "market_stream", "feed");
      stream(feed, "h-feed", (o) => (o.klines !== undefined ? `${plain(o.klines)} klines` : ""));
      stream(pick(hl, "user_stream", "user"), "h-user", (o) => (o.events !== undefined ? `${plain(o.events)} events` : ""));
      const ages = feed && feed.age_s && typeof feed.age_s === "object" ? Object.values(feed.age_s).map(num).filter(Number.isFinite) : [];
      const stale = (feed && feed.stale) || [];
      const lag = setText("h-lag", ages.length ? `${fmt(Math.max(...ages), 1)} s since the last kline` : "—");
      if (stale.length) lag.replaceChildren(h("span", { class: "neg" }, `stale: ${stale.join(", ")}`));
      const mt = num(pick(hl, "market_time_ms"));
      if (mt > S.marketTime) S.marketTime = mt;
      if (!S.runId) S.runId = pick(hl, "run_id") || null;
      if (!S.venue) S.venue = pick(hl, "venue") || "";
      RENDER.header();
    },

    monitoring() {
      const m = S.mon;
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
      if (!Number.isNaN(m.pingMs) && S.pingMs === undefined) setText("h-ping", ms(m.pingMs));
    },

    alerts() {
      const items = [...S.alerts.values()].sort((a, b) => num(b.ts_event) - num(a.ts_event)).map((a) =>
        h("li", { class: a.severity === "critical" ? "critical" : "warning", "data-kind": a.kind },
          h("b", {}, a.kind.replace(/_/g, " ")), a.symbol ? h("span", { class: "muted" }, " " + a.symbol) : null,
          h("div", { class: "small" }, a.message), h("div", { class: "muted small" }, utc(a.ts_event, true))));
      const ul = document.getElementById("alerts");
      ul.replaceChildren(...(items.length ? items : [h("li", { class: "empty" }, "no active alerts")]));
      const count = setText("alert-count", String(S.alerts.size));
      count.classList.toggle("hot", S.alerts.size > 0);
    },
  };

  // ------------------------------------------------------------------ operator commands
  async function control(command, symbol) {
    const body = { command };
    if (symbol) body.symbol = symbol;
    const what = command.replace("_", " ") + (symbol ? ` ${symbol}` : "");
    try {
      await api("/api/control", body);
      if (command === "flatten" || command === "cancel_all") toast(`${what}: sent`, "ok");
    } catch (e) {
      toast(`${what} refused: ${e.message}`, "bad");
    }
  }

  async function cancelOrder(cid) {
    try {
      await api("/api/cancel", { client_order_id: cid });
      toast(`cancel sent for ${cid}`, "ok");
    } catch (e) {
      toast(`cancel refused: ${e.message}`, "bad");
    }
  }

  function confirmFlatten(symbol) {
    const dlg = document.getElementById("confirm");
    const sel = document.getElementById("confirm-symbol");
    sel.replaceChildren(h("option", { value: "" }, "every symbol"), ...S.symbols.map((s) => h("option", { value: s }, s)));
    sel.value = symbol || "";
    setText("confirm-title", "Flatten");
    setText("confirm-text", "Cancel every open order and close the position with reduce-only market orders. " +
      "The strategies keep running.");
    dlg.returnValue = "";
    dlg.onclose = () => { if (dlg.returnValue === "ok") control("flatten", sel.value || undefined); };
    dlg.showModal();
  }

  function wireControls() {
    for (const b of document.querySelectorAll("#controls button")) {
      b.addEventListener("click", () => {
        const action = b.dataset.action;
        if (action === "flatten") confirmFlatten();
        else control(action);
      });
    }
    document.getElementById("order-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const body = { symbol: f.get("symbol"), side: f.get("side"), quantity: String(f.get("qty")).trim() };
      const opt = (name) => String(f.get(name) || "").trim();
      if (opt("price")) body.price = opt("price");
      if (opt("stop")) body.stop_price = opt("stop");
      if (opt("target")) body.take_profit_price = opt("target");
      const out = document.getElementById("order-result");
      out.className = "muted small";
      out.textContent = "sending…";
      out.dataset.state = "";
      out.dataset.cid = "";
      try {
        const res = await api("/api/order", body);
        const denial = res && res.denial;
        out.dataset.cid = (res && res.client_order_id) || "";
        out.dataset.state = denial ? "DENIED" : (res && res.state) || "";
        out.textContent = denial ? `denied: ${denial.code} ${denial.message}`
          : `${res.state} ${res.client_order_id}` + (res.order_id ? ` · venue id ${res.order_id}` : "") +
            (res.adjustments && res.adjustments.length ? ` · ${res.adjustments.join(", ")}` : "");
        out.className = denial || res.state === "REJECTED" ? "small neg" : "small pos";
      } catch (e) {
        out.dataset.state = "ERROR";
        out.textContent = `refused: ${e.message}`;
        out.className = "small neg";
      }
    });
  }

  // ------------------------------------------------------------------ start
  function addSymbol(sym) {
    if (!sym || S.symbols.includes(sym)) return;
    S.symbols.push(sym);
    S.symbols.sort();
    if (!S.active) S.active = sym;
    mark("tabs", "candles", "market");
  }

  function loadEquity(v) {
    const pts = list(v, "points", "equity", "curve").map((p) => Array.isArray(p)
      ? { t: num(p[0]), equity: num(p[1]) }
      : { t: num(pick(p, "ts", "t", "time", "ts_event")), equity: num(pick(p, "equity", "value")) })
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.equity));
    const tail = S.equity.filter((p) => !pts.length || p.t > pts[pts.length - 1].t);
    S.equity = pts.concat(tail);
    mark("equity", "summary");
  }

  async function load() {
    const get = (p) => api(p).catch((e) => { if (e.status === 401) throw e; return null; });
    try {
      const cfg = await get("/api/config");
      if (cfg) {
        S.runId = pick(cfg, "run_id") || S.runId;
        const venue = pick(cfg, "venue");
        S.venue = typeof venue === "object" && venue ? pick(venue, "name", "rest_url") || "" : venue || "";
        for (const s of list(pick(cfg, "symbols") || [])) addSymbol(typeof s === "string" ? s : s.symbol);
        for (const st of list(pick(cfg, "strategies") || [])) {
          for (const s of list(st && st.symbols)) {
            addSymbol(s);
            const cur = chartTf.get(s);
            if (st.timeframe && (cur === undefined || tfMinutes(st.timeframe) < tfMinutes(cur))) chartTf.set(s, st.timeframe);
          }
        }
      }
      const health = await get("/api/health");
      if (health) { S.runId = S.runId || pick(health, "run_id"); setHealth(health); }
      const [eq, trades, alerts, markets] = await Promise.all([
        get("/api/equity"), get("/api/trades"), get("/api/alerts"),
        Promise.all(S.symbols.map((s) => get("/api/market?symbol=" + encodeURIComponent(s)))),
      ]);
      if (eq) loadEquity(eq);
      for (const a of list(alerts, "active")) setAlert(a);
      for (const m of markets) if (m) setMarket(m);
      for (const t of list(trades, "trades")) {
        const arr = S.marks.get(t.symbol) || [];
        const long = String(t.side).toUpperCase() === "LONG";
        arr.push({ t: num(t.entry_time), side: long ? "BUY" : "SELL", price: num(t.entry_price), qty: plain(t.quantity), exit: false, pnl: 0 });
        if (t.exit_reason !== "open") arr.push({ t: num(t.exit_time), side: long ? "SELL" : "BUY", price: num(t.exit_price), qty: plain(t.quantity), exit: true, pnl: num(t.net_pnl) });
        S.marks.set(t.symbol, arr);
      }
    } catch (e) {
      if (e.status === 401) {
        streamState("not logged in", "pill-bad");
        toast("Not logged in: open the dashboard link that `kinetic run` printed.", "bad");
        return;
      }
    }
    mark("header", "summary", "equity", "candles", "positions", "orders", "fills", "risk", "health", "monitoring", "alerts", "tabs");
    stream();
  }

  wireControls();
  document.getElementById("h-ping").addEventListener("click", ping);
  load().then(ping);
})();
