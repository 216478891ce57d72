/* Shared by the dashboard and the runs page: number and time formatting, the JSON API call, toasts.
 * Money arrives as strings (Decimal on the server); it is parsed only for display and charts. */
"use strict";

const KE = (() => {
  const num = (v) => {
    if (v === null || v === undefined || v === "") return NaN;
    const n = typeof v === "number" ? v : parseFloat(v);
    return Number.isFinite(n) ? n : NaN;
  };

  /** A number with a fixed number of places and thousands separators; "—" when missing. */
  const fmt = (v, places = 2, sign = false) => {
    const n = num(v);
    if (Number.isNaN(n)) return "—";
    const s = n.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
    return sign && n > 0 ? "+" + s : s;
  };

  /** A price or quantity as the exchange sent it, trailing zeros dropped. */
  const plain = (v) => {
    if (v === null || v === undefined || v === "") return "—";
    const s = String(v);
    return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s;
  };

  const pct = (v, places = 2) => (Number.isNaN(num(v)) ? "—" : fmt(num(v) * 100, places) + "%");

  const ms = (v) => (Number.isNaN(num(v)) ? "—" : num(v) < 10 ? fmt(v, 1) + " ms" : fmt(v, 0) + " ms");

  /** Epoch ms as UTC text; charts get the same without a zone so plotly shows UTC. */
  const utc = (t, withDate = false) => {
    const n = num(t);
    if (Number.isNaN(n) || n <= 0) return "—";
    const iso = new Date(n).toISOString();
    return withDate ? iso.slice(0, 19).replace("T", " ") : iso.slice(11, 19);
  };
  const chartTime = (t) => new Date(num(t)).toISOString().slice(0, 23).replace("T", " ");

  const duration = (seconds) => {
    const s = Math.max(0, Math.floor(num(seconds) || 0));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + String(m).padStart(h ? 2 : 1, "0") + "m " + String(r).padStart(2, "0") + "s";
  };

  const tone = (el, v) => {
    const n = num(v);
    el.classList.toggle("pos", n > 0);
    el.classList.toggle("neg", n < 0);
  };

  const setText = (id, text) => {
    const el = typeof id === "string" ? document.getElementById(id) : id;
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  };

  /** Build an element: h("td", {class: "r"}, "text", child, ...). */
  const h = (tag, attrs, ...children) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  };

  let toastTimer = null;
  const toast = (text, kind = "info") => {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = "show " + kind;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = ""; }, 5000);
  };

  /** Call the JSON API on this origin (the login cookie rides along). A failure becomes an Error whose
   * message is the server's JSON error, or the status line. */
  const api = async (path, body) => {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.headers["X-Kinetic-Request"] = "1";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) {
      const err = data && (data.error || data.detail || data.message);
      const msg = typeof err === "string" ? err : err ? JSON.stringify(err) : `${resp.status} ${resp.statusText}`;
      const e = new Error(msg);
      e.status = resp.status;
      e.data = data;
      throw e;
    }
    return data;
  };

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

  return { num, fmt, plain, pct, ms, utc, chartTime, duration, tone, toneClass, setText, h, toast, api, syncTable };
})();
