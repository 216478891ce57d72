/* The dashboard's two plotly charts: candles with the run's fills and the open position's entry and
 * stop, and equity over drawdown. Both are redrawn with Plotly.react (cheap diffing), at most a few
 * times a second however fast events arrive. */
"use strict";

const Charts = (() => {
  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => (css.getPropertyValue(name) || fallback).trim();
  const C = {
    fg: color("--fg", "#d7dce2"),
    muted: color("--muted", "#8b949e"),
    grid: color("--grid", "#2a3038"),
    up: color("--up", "#26a69a"),
    down: color("--down", "#ef5350"),
    accent: color("--accent", "#58a6ff"),
    warn: color("--warn", "#d29922"),
  };
  const config = { displayModeBar: false, responsive: true, scrollZoom: false };
  const axis = { gridcolor: C.grid, zerolinecolor: C.grid, linecolor: C.grid, tickfont: { size: 10 } };
  const base = () => ({
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: C.fg, size: 11, family: "inherit" },
    margin: { l: 56, r: 12, t: 6, b: 34 },
    showlegend: false,
    hovermode: "x",
    hoverlabel: { font: { size: 11 } },
    uirevision: "keep",
  });

  /** klines: [{t, o, h, l, c, forming?}] (the last may be in progress), fills: [{t, side, price, qty, exit,
   * pnl}], lines: {entry, stop, target} (NaN: not drawn). */
  function candles(el, symbol, klines, fills, lines) {
    const x = klines.map((k) => KE.chartTime(k.t));
    const data = [{
      type: "candlestick", name: symbol, x,
      open: klines.map((k) => k.o), high: klines.map((k) => k.h),
      low: klines.map((k) => k.l), close: klines.map((k) => k.c),
      increasing: { line: { color: C.up, width: 1 }, fillcolor: C.up },
      decreasing: { line: { color: C.down, width: 1 }, fillcolor: C.down },
      hoverinfo: "x+y",
    }];
    const first = klines.length ? klines[0].t : -Infinity;
    const shown = fills.filter((f) => f.t >= first);
    const group = (pred, name, symbolName, col, size) => {
      const g = shown.filter(pred);
      data.push({
        type: "scatter", mode: "markers", name, x: g.map((f) => KE.chartTime(f.t)), y: g.map((f) => f.price),
        text: g.map((f) => `${name}: ${f.side} ${f.qty} @ ${f.price}` + (f.exit ? ` (PnL ${KE.fmt(f.pnl, 2, true)})` : "")),
        hoverinfo: "text",
        marker: symbolName.endsWith("-open")
          ? { symbol: symbolName, size, color: col, line: { color: col, width: 2 } }
          : { symbol: symbolName, size, color: col, line: { color: "#0d1117", width: 1 } },
      });
    };
    // exits are rings, so an exit and an entry at the same price (a flip) both stay visible
    group((f) => f.exit, "exit", "circle-open", C.warn, 13);
    group((f) => !f.exit && f.side === "BUY", "long entry", "triangle-up", C.up, 10);
    group((f) => !f.exit && f.side === "SELL", "short entry", "triangle-down", C.down, 10);

    // the price scale fits the candles, and a line near them; a far stop or target would flatten the candles,
    // so it stays drawn at its price (off the scale) with its label pinned to the edge it lies beyond
    const range = priceRange(klines, [lines.entry, lines.stop, lines.target]);
    const shapes = [], annotations = [];
    const hline = (y, col, label) => {
      if (!Number.isFinite(y)) return;
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: col, width: 1, dash: "dash" } });
      const off = range && (y > range[1] ? 1 : y < range[0] ? -1 : 0);
      annotations.push(off
        ? { xref: "paper", yref: "paper", x: 1, y: off > 0 ? 1 : 0, xanchor: "right", yanchor: off > 0 ? "top" : "bottom",
          showarrow: false, text: `${label} ${off > 0 ? "↑" : "↓"}`, font: { size: 10, color: col } }
        : { xref: "paper", x: 1, y, xanchor: "right", yanchor: "bottom", showarrow: false,
          text: label, font: { size: 10, color: col } });
    };
    hline(lines.entry, C.accent, `entry ${lines.entry}`);
    hline(lines.stop, C.down, `stop ${lines.stop}`);
    hline(lines.target, C.up, `target ${lines.target}`);
    const layout = Object.assign(base(), {
      xaxis: Object.assign({}, axis, { type: "date", rangeslider: { visible: false } }),
      yaxis: Object.assign({}, axis, { side: "left", tickformat: ".5~f" }, range ? { range } : { autorange: true }),
      shapes, annotations,
    });
    if (!klines.length) {
      layout.annotations.push({ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        text: `waiting for ${symbol || "the first"} klines…`, font: { color: C.muted, size: 13 } });
      layout.xaxis.visible = false;
      layout.yaxis.visible = false;
    }
    return Plotly.react(el, data, layout, config);
  }

  /** [low, high] of the candles, widened to take in each line within one candle range of them; padded. */
  function priceRange(klines, levels) {
    let lo = Infinity, hi = -Infinity;
    for (const k of klines) {
      if (Number.isFinite(k.l)) lo = Math.min(lo, k.l);
      if (Number.isFinite(k.h)) hi = Math.max(hi, k.h);
    }
    if (!(hi >= lo)) return null;
    const span = Math.max(hi - lo, Math.abs(hi) * 1e-4);
    let a = lo, b = hi;
    for (const y of levels) {
      if (Number.isFinite(y) && y >= lo - span && y <= hi + span) { a = Math.min(a, y); b = Math.max(b, y); }
    }
    const pad = Math.max((b - a) * 0.05, Math.abs(b) * 1e-5);
    return [a - pad, b + pad];
  }

  /** points: [{t, equity}] in time order; drawdown from the running peak, in percent. */
  function equity(el, points) {
    let peak = -Infinity;
    const x = [], y = [], dd = [];
    for (const p of points) {
      peak = Math.max(peak, p.equity);
      x.push(KE.chartTime(p.t));
      y.push(p.equity);
      dd.push(peak > 0 ? (p.equity / peak - 1) * 100 : 0);
    }
    const data = [
      { type: "scatter", mode: "lines", name: "equity", x, y, line: { color: C.accent, width: 1.6 },
        hovertemplate: "%{y:,.2f} USDT<extra></extra>" },
      { type: "scatter", mode: "lines", name: "drawdown", x, y: dd, yaxis: "y2", fill: "tozeroy",
        line: { color: C.down, width: 1 }, fillcolor: "rgba(239,83,80,0.25)",
        hovertemplate: "%{y:.2f}%<extra></extra>" },
    ];
    const layout = Object.assign(base(), {
      xaxis: Object.assign({}, axis, { type: "date", anchor: "y2" }),
      yaxis: Object.assign({}, axis, { domain: [0.34, 1], tickformat: ",.2f" }),
      yaxis2: Object.assign({}, axis, { domain: [0, 0.26], ticksuffix: "%", tickformat: ".1f", nticks: 3, rangemode: "tozero" }),
    });
    if (!points.length) {
      layout.annotations = [{ xref: "paper", yref: "paper", x: 0.5, y: 0.6, showarrow: false,
        text: "no equity points yet", font: { color: C.muted, size: 13 } }];
    }
    return Plotly.react(el, data, layout, config);
  }

  /** Fill markers drawn on a candles chart (every point of its marker traces). */
  const markersShown = (el) => (el.data || []).filter((t) => t.mode === "markers").reduce((n, t) => n + t.x.length, 0);

  return { candles, equity, markersShown };
})();
