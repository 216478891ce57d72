/* The monitoring panel's figures, read from the run's Prometheus text (/metrics): latency percentiles from
 * histogram buckets, rates, slippage, request weight. Fetched when the event stream says the run is
 * alive (its `health` message), so the panel moves with the stream and never on a timer of its own. */
"use strict";

const Monitoring = (() => {
  /** Prometheus text exposition -> [{name, labels, value}] (comments and blank lines skipped). */
  function parse(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      const value = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : parseFloat(m[4]);
      out.push({ name: m[1], labels, value });
    }
    return out;
  }

  const sum = (rows, name) => rows.filter((r) => r.name === name).reduce((a, r) => a + r.value, 0);
  const has = (rows, name) => rows.some((r) => r.name === name);

  /** One histogram summed over its labels: cumulative buckets by upper bound, count and sum. */
  function histogram(rows, name) {
    const byLe = new Map();
    for (const r of rows) {
      if (r.name !== name + "_bucket") continue;
      const le = r.labels.le === "+Inf" ? Infinity : parseFloat(r.labels.le);
      byLe.set(le, (byLe.get(le) || 0) + r.value);
    }
    const buckets = [...byLe.entries()].sort((a, b) => a[0] - b[0]);
    return { buckets, count: sum(rows, name + "_count"), sum: sum(rows, name + "_sum") };
  }

  /** The q-quantile by linear interpolation inside its bucket (Prometheus' histogram_quantile). */
  function quantile(h, q) {
    if (!h.count || !h.buckets.length) return NaN;
    const rank = q * h.count;
    let prevLe = 0, prevCount = 0;
    for (const [le, c] of h.buckets) {
      if (c >= rank) {
        if (le === Infinity) return prevLe;
        const lower = prevLe > le ? le : prevLe;
        return c === prevCount ? le : lower + (le - lower) * ((rank - prevCount) / (c - prevCount));
      }
      prevLe = le;
      prevCount = c;
    }
    return prevLe;
  }

  /** The panel's figures; NaN where the run has no data yet. Latencies in ms, slippage in bps. */
  function summarise(text) {
    const rows = parse(text);
    const rest = histogram(rows, "kinetic_rest_request_duration_seconds");
    const k2o = histogram(rows, "kinetic_kline_to_order_seconds");
    const slip = histogram(rows, "kinetic_slippage_bps");
    const ping = histogram(rows, "kinetic_venue_ping_seconds");
    const requests = sum(rows, "kinetic_rest_requests_total") || rest.count;
    const errors = sum(rows, "kinetic_rest_errors_total");
    return {
      restP50: quantile(rest, 0.5) * 1000, restP99: quantile(rest, 0.99) * 1000, restCount: rest.count,
      k2oP50: quantile(k2o, 0.5) * 1000, k2oP99: quantile(k2o, 0.99) * 1000,
      placed: sum(rows, "kinetic_orders_placed_total"), filled: sum(rows, "kinetic_orders_filled_total"),
      rejected: sum(rows, "kinetic_orders_rejected_total"),
      rejectRate: has(rows, "kinetic_reject_rate") ? sum(rows, "kinetic_reject_rate") : NaN,
      fillRate: has(rows, "kinetic_fill_rate") ? sum(rows, "kinetic_fill_rate") : NaN,
      errorRate: requests ? errors / requests : NaN, errors, requests,
      slippageAvg: slip.count ? slip.sum / slip.count : NaN, slippageP95: quantile(slip, 0.95), slippageN: slip.count,
      weightUsed: has(rows, "kinetic_request_weight_used") ? sum(rows, "kinetic_request_weight_used") : NaN,
      weightLimit: has(rows, "kinetic_request_weight_limit") ? sum(rows, "kinetic_request_weight_limit") : NaN,
      pingMs: ping.count ? (ping.sum / ping.count) * 1000 : NaN,
      rateLimited: sum(rows, "kinetic_rest_rate_limited_total"),
    };
  }

  return { parse, histogram, quantile, summarise };
})();
