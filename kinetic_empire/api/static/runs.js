/* The runs page: every backtest result and past paper run the server knows, newest first, each with its
 * report. A list that changes rarely, so it is loaded once (reload for news), not streamed. The listing's
 * headline figures are completed from each result's metrics.json when the listing leaves some out. */
"use strict";

(() => {
  const { num, fmt, plain, utc, h, toast, api } = KE;
  const MAX_METRIC_READS = 40;
  let rows = [];
  let current = null; // the run serving this page

  const pick = (o, ...names) => {
    for (const n of names) if (o && o[n] !== undefined && o[n] !== null) return o[n];
    return undefined;
  };

  const parseWhen = (v) => (typeof v === "string" && !/^\d+$/.test(v) ? Date.parse(v.endsWith("Z") ? v : v + "Z") : num(v));

  function normalise(r) {
    const files = r.files || {};
    const kind = String(r.kind || "").replace(/s$/, "");
    const row = { kind: kind === "run" ? "live" : kind, id: String(r.id || ""), files,
      report: files["report.html"], journal: Boolean(r.has_journal), metrics: {} };
    merge(row, r.metrics || {});
    return row;
  }

  function merge(row, m) {
    Object.assign(row.metrics, m);
    const get = (...n) => pick(row.metrics, ...n);
    row.when = parseWhen(get("start_ms", "start"));
    row.trades = get("trade_count", "trades");
    row.ret = get("total_return_pct");
    row.dd = get("max_drawdown_pct");
    row.finalEquity = get("final_equity");
    const initial = num(get("initial_balance"));
    row.net = get("net_pnl") ?? (Number.isFinite(initial) ? num(row.finalEquity) - initial : undefined);
  }

  function render() {
    const kind = document.getElementById("kind").value;
    const q = document.getElementById("filter").value.trim().toLowerCase();
    const shown = rows.filter((r) => (!kind || r.kind === kind) && (!q || r.id.toLowerCase().includes(q)));
    const out = shown.map((r) => {
      const net = h("td", { class: "r" }, fmt(r.net, 2, true));
      KE.tone(net, r.net);
      const ret = h("td", { class: "r" }, Number.isFinite(num(r.ret)) ? fmt(r.ret, 2, true) + "%" : "—");
      KE.tone(ret, r.ret);
      const links = [];
      for (const [name, url] of Object.entries(r.files)) {
        if (name === "report.html" || name.endsWith(".png")) continue;
        links.push(" ", h("a", { href: url, class: "small", target: "_blank", rel: "noopener" }, name.replace(/\.(csv|json)$/, "")));
      }
      const live = r.kind === "live" && r.id === current;
      const report = r.report
        ? h("a", { href: r.report, target: "_blank", rel: "noopener", class: "report-link" }, "open report")
        : live ? h("a", { href: "/", class: "report-link" }, "live now: dashboard")
          : h("span", { class: "muted" }, r.journal ? "no report yet (kinetic report " + r.id + ")" : "no report");
      return h("tr", { "data-id": r.id, "data-kind": r.kind },
        h("td", {}, h("span", { class: "badge " + r.kind }, r.kind === "live" ? "paper run" : r.kind || "?")),
        h("td", { class: "mono" }, r.id),
        h("td", {}, Number.isFinite(r.when) ? utc(r.when, true) : "—"),
        h("td", { class: "r" }, r.trades === undefined ? "—" : plain(r.trades)), net, ret,
        h("td", { class: "r" }, Number.isFinite(num(r.dd)) ? fmt(-Math.abs(num(r.dd)), 2) + "%" : "—"),
        h("td", { class: "r" }, fmt(r.finalEquity)),
        h("td", {}, report, ...links));
    });
    const body = document.querySelector("#runs tbody");
    body.replaceChildren(...(out.length ? out : [h("tr", { class: "empty" }, h("td", { colspan: 9 },
      rows.length ? "nothing matches" : "no backtest results or past runs yet"))]));
    KE.setText("runs-count", `${shown.length} of ${rows.length}`);
  }

  /** metrics.json of the rows whose listing lacks the table's figures (the first few dozen). */
  async function complete() {
    const need = rows.filter((r) => r.files["metrics.json"] && (r.trades === undefined || r.when === undefined || Number.isNaN(r.when)))
      .slice(0, MAX_METRIC_READS);
    await Promise.all(need.map(async (r) => {
      try {
        merge(r, await api(r.files["metrics.json"]));
      } catch (_) {
        /* the listing's figures stay */
      }
    }));
    if (need.length) render();
  }

  async function load() {
    try {
      const [data, health] = await Promise.all([api("/api/runs"), api("/api/health").catch(() => null)]);
      current = health && health.run_id;
      rows = [...(data.runs || []), ...(data.backtests || [])].map(normalise);
    } catch (e) {
      rows = [];
      toast(e.status === 401 ? "Not logged in: open the dashboard link that `kinetic run` printed." : `runs: ${e.message}`, "bad");
    }
    render();
    await complete();
    rows.sort((a, b) => (b.when || 0) - (a.when || 0) || b.id.localeCompare(a.id));
    render();
    document.body.dataset.loaded = "true";
  }

  document.getElementById("kind").addEventListener("change", render);
  document.getElementById("filter").addEventListener("input", render);
  load();
})();
