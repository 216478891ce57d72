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

  function normalise(r) {
    const m = pick(r, "metrics") || {};
    const get = (...n) => pick(r, ...n) ?? pick(m, ...n);
    const files = pick(r, "files") || {};
    const kind = String(get("kind") || "").replace(/s$/, "");
    const when = get("start_ms", "start", "started_ms");
    return {
      kind: kind === "run" ? "live" : kind,
      id: get("id", "run_id") || "",
      when: typeof when === "string" && !/^\d+$/.test(when) ? Date.parse(when.endsWith("Z") ? when : when + "Z") : num(when),
      trades: get("trades"),
      net: get("net_pnl"),
      ret: get("total_return_pct"),
      dd: get("max_drawdown_pct"),
      finalEquity: get("final_equity"),
      report: files["report.html"] || get("report_url"),
      files,
      journal: Boolean(get("has_journal")),
    };
  }

  function render() {
    const kind = document.getElementById("kind").value;
    const q = document.getElementById("filter").value.trim().toLowerCase();
    const shown = rows.filter((r) => (!kind || r.kind === kind) &&
      (!q || r.id.toLowerCase().includes(q)));
    const body = document.querySelector("#runs tbody");
    const out = shown.map((r) => {
      const net = h("td", { class: "r" }, fmt(r.net, 2, true));
      KE.tone(net, r.net);
      const ret = num(r.ret);
      const others = Object.entries(r.files).filter(([n]) => n !== "report.html" && !n.endsWith(".png"))
        .map(([n, url]) => h("a", { href: url, class: "small", target: "_blank", rel: "noopener" }, n.replace(/\.(csv|json)$/, "")));
      const links = [];
      for (const a of others) links.push(" ", a);
      return h("tr", { "data-id": r.id, "data-kind": r.kind },
        h("td", {}, h("span", { class: "badge " + r.kind }, r.kind === "live" ? "paper run" : r.kind || "?")),
        h("td", { class: "mono" }, r.id),
        h("td", {}, Number.isFinite(r.when) ? utc(r.when, true) : "—"),
        h("td", { class: "r" }, r.trades === undefined ? "—" : plain(r.trades)), net,
        h("td", { class: "r" }, Number.isFinite(ret) ? fmt(ret, 2, true) + "%" : "—"),
        h("td", { class: "r" }, r.dd === undefined ? "—" : fmt(-Math.abs(num(r.dd)), 2) + "%"),
        h("td", { class: "r" }, fmt(r.finalEquity)),
        h("td", {}, r.report ? h("a", { href: r.report, target: "_blank", rel: "noopener", class: "report-link" }, "open report") : h("span", { class: "muted" }, "no report"), ...links));
    });
    body.replaceChildren(...(out.length ? out : [h("tr", { class: "empty" }, h("td", { colspan: 9 }, rows.length ? "nothing matches" : "no runs or backtests yet"))]));
    KE.setText("runs-count", `${shown.length} of ${rows.length}`);
  }

  async function load() {
    try {
      const data = await api("/api/runs");
      const list = Array.isArray(data) ? data : [...(data.runs || []), ...(data.backtests || [])];
      rows = list.map(normalise).sort((a, b) => (b.when || 0) - (a.when || 0) || String(b.id).localeCompare(String(a.id)));
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
