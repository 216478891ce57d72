/* The runs page: every backtest result and past live run the server knows, newest first, each with a
 * link to its report. A list that changes rarely, so it is loaded once (and on demand), not streamed. */
"use strict";

(() => {
  const { num, fmt, pct, plain, utc, h, toast, api } = KE;
  let rows = [];

  const pick = (o, ...names) => {
    for (const n of names) if (o && o[n] !== undefined && o[n] !== null) return o[n];
    return undefined;
  };
  const names = (v) => (Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : x.name || x.symbol || "")).join(", ") : v || "");

  function normalise(r) {
    const summary = pick(r, "summary", "metrics", "stats") || {};
    const get = (...n) => pick(r, ...n) ?? pick(summary, ...n);
    return {
      kind: String(get("kind", "type") || "").toLowerCase(),
      id: get("id", "run_id", "name") || "",
      when: num(get("started_ms", "started", "created_ms", "created", "start_ms", "ts")),
      strategies: names(get("strategies")),
      symbols: names(get("symbols")),
      trades: get("trades", "n_trades", "total_trades"),
      net: get("net_pnl", "net_profit", "pnl"),
      ret: get("return_pct", "total_return_pct"),
      dd: get("max_drawdown_pct", "max_drawdown"),
      report: get("report_url", "report"),
      live: Boolean(get("live", "running")),
    };
  }

  function render() {
    const kind = document.getElementById("kind").value;
    const q = document.getElementById("filter").value.trim().toLowerCase();
    const shown = rows.filter((r) => (!kind || r.kind === kind) &&
      (!q || `${r.id} ${r.strategies} ${r.symbols}`.toLowerCase().includes(q)));
    const body = document.querySelector("#runs tbody");
    const out = shown.map((r) => {
      const net = h("td", { class: "r" }, fmt(r.net, 2, true));
      KE.tone(net, r.net);
      const ret = num(r.ret);
      return h("tr", { "data-id": r.id, "data-kind": r.kind },
        h("td", {}, h("span", { class: "badge " + r.kind }, r.kind || "?"), r.live ? h("span", { class: "pill pill-ok small", style: "margin-left:6px" }, "running") : null),
        h("td", { class: "mono" }, r.id),
        h("td", {}, Number.isFinite(r.when) ? utc(r.when, true) : "—"),
        h("td", {}, r.strategies || "—"), h("td", {}, r.symbols || "—"),
        h("td", { class: "r" }, r.trades === undefined ? "—" : plain(r.trades)), net,
        h("td", { class: "r" }, Number.isFinite(ret) ? fmt(ret, 2, true) + "%" : "—"),
        h("td", { class: "r" }, r.dd === undefined ? "—" : Math.abs(num(r.dd)) <= 1 && String(r.dd).indexOf("%") < 0 && !String(r.dd).includes("pct") ? pct(r.dd) : fmt(r.dd, 2) + "%"),
        h("td", {}, r.report ? h("a", { href: r.report, target: "_blank", rel: "noopener" }, "open report") : h("span", { class: "muted" }, "no report")));
    });
    body.replaceChildren(...(out.length ? out : [h("tr", { class: "empty" }, h("td", { colspan: 10 }, rows.length ? "nothing matches" : "no runs or backtests yet"))]));
    KE.setText("runs-count", `${shown.length} of ${rows.length}`);
  }

  async function load() {
    try {
      const data = await api("/api/runs");
      const list = Array.isArray(data) ? data : pick(data, "runs", "items") || [];
      rows = list.map(normalise).sort((a, b) => (b.when || 0) - (a.when || 0));
    } catch (e) {
      rows = [];
      toast(e.status === 401 ? "Not logged in: open the dashboard link that `kinetic run` printed." : `runs: ${e.message}`, "bad");
    }
    render();
  }

  document.getElementById("kind").addEventListener("change", render);
  document.getElementById("filter").addEventListener("input", render);
  load();
})();
