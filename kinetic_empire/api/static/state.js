/* The dashboard's model: what the run's event stream (and the first REST reads) say, kept in one object.
 * Shapes are the gateway's (kinetic_empire/api/README.md). Nothing here touches the DOM: every change
 * names the panels it affects through `mark`, and the view redraws those. */
"use strict";

const DashState = (mark, hooks = {}) => {
  const { num, plain } = KE;
  const MAX_KLINES = 500, MAX_FILLS = 60, MAX_MARKS = 200, MAX_EQUITY = 5000;

  const S = {
    runId: null, venue: "", symbols: [], active: null, marketTime: 0,
    account: null, accountTs: 0,
    positions: new Map(),      // symbol -> {symbol, qty, qtyText, entry, leverage, last, upnl}
    orders: new Map(),         // client_order_id -> ORDER (open ones only)
    fills: [],                 // newest first: {key, t, symbol, side, qty, price, priceText, pnl, exit, cid}
    fillCount: 0,
    klines: new Map(),         // symbol -> [{t, o, h, l, c}] of the charted timeframe
    marks: new Map(),          // symbol -> fills to mark on the candles (entries and exits), oldest first
    market: new Map(),         // symbol -> {last, mark, age}
    equity: [],                // [{t, equity}]
    risk: { state: "", cause: "", symbols: {}, feedStale: false, denial: null },
    health: {},
    alerts: new Map(),         // kind|symbol -> ALERT
    lastId: null, snapshots: 0, gaps: 0,
  };

  const pick = (o, ...names) => {
    if (!o) return undefined;
    for (const n of names) if (o[n] !== undefined && o[n] !== null) return o[n];
    return undefined;
  };
  const list = (v, key) => (Array.isArray(v) ? v : (v && v[key]) || []);

  // ------------------------------------------------------------------ symbols and the charted timeframe
  const tfMinutes = (tf) => {
    const m = /^(\d+)([mhdwM])$/.exec(String(tf || ""));
    return m ? Number(m[1]) * { m: 1, h: 60, d: 1440, w: 10080, M: 43200 }[m[2]] : Infinity;
  };
  const chartTf = new Map(); // symbol -> the shortest timeframe its strategies trade

  function addSymbol(sym, timeframe) {
    if (timeframe) {
      const cur = chartTf.get(sym);
      if (cur === undefined || tfMinutes(timeframe) < tfMinutes(cur)) chartTf.set(sym, timeframe);
    }
    if (!sym || S.symbols.includes(sym)) return;
    S.symbols.push(sym);
    S.symbols.sort();
    if (!S.active) S.active = sym;
    mark("tabs", "candles", "market");
  }

  // ------------------------------------------------------------------ one setter per kind of news
  const toPosition = (p) => ({
    symbol: p.symbol, qty: num(p.quantity), qtyText: plain(p.quantity), entry: p.entry_price,
    leverage: p.leverage, last: pick(p, "last_price"), upnl: pick(p, "unrealized_pnl"),
  });

  function setPosition(p) {
    const pos = toPosition(p);
    if (!pos.symbol) return;
    if (!pos.qty) S.positions.delete(pos.symbol);
    else S.positions.set(pos.symbol, pos);
    mark("positions", "candles");
  }

  function replacePositions(rows) {
    S.positions = new Map(rows.map(toPosition).filter((p) => p.symbol && p.qty).map((p) => [p.symbol, p]));
    mark("positions", "candles");
  }

  const TERMINAL = new Set(["FILLED", "CANCELLED", "REJECTED", "EXPIRED"]);
  function setOrder(o) {
    const id = o.client_order_id;
    if (!id) return;
    if (TERMINAL.has(o.state)) S.orders.delete(id);
    else S.orders.set(id, o);
    mark("orders", "positions", "candles");
  }

  const toFill = (f, ts) => {
    const fill = {
      t: num(pick(f, "ts_event")) || ts, symbol: f.symbol, side: String(f.side || ""),
      qty: plain(f.quantity), price: num(f.price), priceText: plain(f.price),
      pnl: num(f.realized_pnl) || 0, cid: f.client_order_id || "",
    };
    fill.key = `${fill.cid}:${pick(f, "trade_id") ?? S.fillCount}`;
    fill.exit = f.exit !== undefined ? Boolean(f.exit) : Boolean(f.reduce_only) || fill.pnl !== 0;
    return fill;
  };

  /** A fill as a chart marker, once (the stream and GET /api/klines may both bring it). */
  function addMark(fill) {
    const marks = S.marks.get(fill.symbol) || [];
    if (marks.some((m) => m.key === fill.key)) return;
    marks.push(fill);
    marks.sort((a, b) => a.t - b.t);
    S.marks.set(fill.symbol, marks.slice(-MAX_MARKS));
  }

  function addFill(f, ts) {
    const fill = toFill(f, ts);
    S.fills.unshift(fill);
    if (S.fills.length > MAX_FILLS) S.fills.length = MAX_FILLS;
    S.fillCount += 1;
    addMark(fill);
    mark("fills", "candles", "summary");
  }

  const toKline = (k) => ({ t: num(k.open_time), o: num(k.open), h: num(k.high), l: num(k.low), c: num(k.close) });

  /** GET /api/klines: the run's history of the charted timeframe (anything newer from the stream kept), the
   * kline in progress, and the fills to mark. */
  function loadKlines(v) {
    const sym = v.symbol;
    if (!sym) return;
    const sameTf = !v.timeframe || !chartTf.has(sym) || chartTf.get(sym) === v.timeframe;
    if (v.timeframe) chartTf.set(sym, v.timeframe);
    const loaded = list(v, "klines").map(toKline).filter((k) => Number.isFinite(k.t));
    // the union of both, in time order: a kline may reach the page by either way first, and one the stream
    // brought while this answer was on its way must not be lost (a forming one is replaced by the closed one)
    const byTime = new Map();
    if (sameTf) for (const k of S.klines.get(sym) || []) if (!k.forming) byTime.set(k.t, k);
    for (const k of loaded) byTime.set(k.t, k);
    const arr = [...byTime.values()].sort((a, b) => a.t - b.t);
    const cur = v.in_progress ? toKline(v.in_progress) : null;
    if (cur && Number.isFinite(cur.t) && cur.t > (arr.length ? arr[arr.length - 1].t : -Infinity)) {
      cur.forming = true;
      arr.push(cur);
    }
    S.klines.set(sym, arr.slice(-MAX_KLINES));
    for (const f of list(v, "fills")) addMark(toFill(f, 0));
    if (sym === S.active) mark("candles");
  }

  function setAccount(a, ts) {
    S.account = a;
    S.accountTs = Math.max(S.accountTs, ts || 0);
    const eq = num(a.equity);
    if (Number.isFinite(eq) && S.accountTs) {
      const last = S.equity[S.equity.length - 1];
      if (last && last.t === S.accountTs) last.equity = eq;
      else if (!last || S.accountTs > last.t) S.equity.push({ t: S.accountTs, equity: eq });
      if (S.equity.length > MAX_EQUITY) S.equity.splice(0, S.equity.length - MAX_EQUITY);
    }
    mark("summary", "equity");
  }

  /** GET /api/equity: the curve so far, with anything newer the stream already brought kept. */
  function loadEquity(v) {
    const pts = list(v, "points").map(([t, e]) => ({ t: num(t), equity: num(e) }))
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.equity));
    const end = pts.length ? pts[pts.length - 1].t : -Infinity;
    S.equity = pts.concat(S.equity.filter((p) => p.t > end));
    mark("equity", "summary");
  }

  function addKline(k) {
    const sym = k.symbol;
    if (!sym) return;
    addSymbol(sym);
    if (k.timeframe) {
      if (!chartTf.has(sym)) chartTf.set(sym, k.timeframe);
      if (chartTf.get(sym) !== k.timeframe) return;
    }
    const kl = toKline(k);
    if (!Number.isFinite(kl.t)) return;
    const arr = S.klines.get(sym) || [];
    const last = arr[arr.length - 1];
    if (last && last.t === kl.t) arr[arr.length - 1] = kl;
    else if (!last || kl.t > last.t) arr.push(kl);
    else {  // older than the newest shown (the history came first): put it in its place, or replace its twin
      let i = arr.length - 1;
      while (i >= 0 && arr[i].t > kl.t) i -= 1;
      if (i >= 0 && arr[i].t === kl.t) arr[i] = kl;
      else arr.splice(i + 1, 0, kl);
    }
    if (arr.length > MAX_KLINES) arr.splice(0, arr.length - MAX_KLINES);
    S.klines.set(sym, arr);
    if (sym === S.active) mark("candles");
  }

  function setMarket(m) {
    const sym = m.symbol;
    if (!sym) return;
    const cur = S.market.get(sym) || {};
    S.market.set(sym, { last: m.last_price ?? cur.last, mark: m.mark_price ?? cur.mark, age: m.feed_age_s ?? cur.age });
    if (m.last_kline) addKline(m.last_kline);
    mark("market", "positions");
  }

  function setRisk(r) {
    const change = r.change || null;
    if (r.state) S.risk.state = String(r.state);
    if (change && !change.symbol) S.risk.cause = change.cause || "";
    if (r.symbols && typeof r.symbols === "object") S.risk.symbols = { ...r.symbols };
    S.risk.feedStale = Boolean(r.feed_stale);
    if (r.denial) S.risk.denial = r.denial;
    mark("risk");
  }

  function setHealth(hl) {
    Object.assign(S.health, hl);
    const t = num(hl.market_time_ms);
    if (t > S.marketTime) S.marketTime = t;
    if (!S.runId) S.runId = hl.run_id || null;
    if (!S.venue) S.venue = hl.venue || "";
    mark("health", "header");
    if (hooks.onHealth) hooks.onHealth();
  }

  function setAlert(a) {
    const key = `${a.kind}|${a.symbol || ""}`;
    if (a.cleared) S.alerts.delete(key);
    else S.alerts.set(key, a);
    mark("alerts");
  }

  function replaceAlerts(alerts) {
    S.alerts.clear();
    for (const a of alerts) setAlert(a);
    mark("alerts");
  }

  function applySnapshot(snap, ts) {
    if (snap.account) setAccount(snap.account, ts);
    replacePositions(list(snap.positions, "positions"));
    S.orders.clear();
    for (const o of list(snap.orders, "orders")) setOrder(o);
    mark("orders");
    if (snap.risk) setRisk(snap.risk);
    if (snap.health) setHealth(snap.health);
    S.snapshots += 1;
    if (hooks.onSnapshot) hooks.onSnapshot(S.snapshots);
  }

  const HANDLERS = {
    snapshot: applySnapshot, market: setMarket, kline: addKline, order_update: setOrder, fill: addFill,
    account: setAccount, position: setPosition, risk: setRisk, health: setHealth, alert: setAlert,
  };

  /** One stream message. Ids count up by one; a jump outside a snapshot means messages were lost. */
  function apply(name, id, msg) {
    const ts = num(msg.ts_event);
    if (Number.isFinite(ts) && ts > S.marketTime) { S.marketTime = ts; mark("header"); }
    const fn = HANDLERS[name];
    if (fn) fn(msg.data || {}, ts);
    if (id) {
      if (name !== "snapshot" && /^\d+$/.test(id) && /^\d+$/.test(S.lastId || "") && Number(id) !== Number(S.lastId) + 1) {
        S.gaps += 1;
      }
      S.lastId = id;
    }
  }

  /** GET /api/config: symbols and, per symbol, the timeframe to chart. */
  function setConfig(cfg) {
    S.runId = cfg.run_id || S.runId;
    S.venue = (cfg.venue && cfg.venue.name) || S.venue;
    for (const st of cfg.strategies || []) for (const s of st.symbols || []) addSymbol(s, st.timeframe);
    for (const s of cfg.symbols || []) addSymbol(s);
  }

  return { S, apply, setConfig, setMarket, loadEquity, loadKlines, replaceAlerts };
};
