/* The operator's commands: pause, resume, halt, cancel all, flatten (asked first), cancel one order, and the
 * manual order form. Each is one POST to the gateway, which journals it and puts it through the risk gate;
 * the page shows the outcome from the event stream, never from a guess here. */
"use strict";

const Controls = (symbols) => {
  const { h, setText, toast, api } = KE;

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

  /** Flatten closes positions at market: the dialog names what will happen and which symbol. */
  function confirmFlatten(symbol) {
    const dlg = document.getElementById("confirm");
    const sel = document.getElementById("confirm-symbol");
    sel.replaceChildren(h("option", { value: "" }, "every symbol"), ...symbols().map((s) => h("option", { value: s }, s)));
    sel.value = symbol || "";
    setText("confirm-title", "Flatten");
    setText("confirm-text", "Cancel every open order and close the position with reduce-only market orders. " +
      "The strategies keep running.");
    dlg.returnValue = "";
    dlg.onclose = () => { if (dlg.returnValue === "ok") control("flatten", sel.value || undefined); };
    dlg.showModal();
  }

  async function sendOrder(form) {
    const f = new FormData(form);
    const opt = (name) => String(f.get(name) || "").trim();
    const body = { symbol: opt("symbol"), side: opt("side"), quantity: opt("qty") };
    if (opt("price")) body.price = opt("price");
    if (opt("stop")) body.stop_price = opt("stop");
    if (opt("target")) body.take_profit_price = opt("target");
    const out = document.getElementById("order-result");
    Object.assign(out.dataset, { state: "", cid: "" });
    out.className = "muted small";
    out.textContent = "sending…";
    try {
      const res = await api("/api/order", body);
      const denial = res.denial;
      Object.assign(out.dataset, { cid: res.client_order_id || "", state: denial ? "DENIED" : res.state || "" });
      out.textContent = denial ? `denied: ${denial.code} ${denial.message}`
        : `${res.state} ${res.client_order_id}` + (res.order_id ? ` · venue id ${res.order_id}` : "") +
          (res.adjustments && res.adjustments.length ? ` · ${res.adjustments.join(", ")}` : "");
      out.className = denial || res.state === "REJECTED" ? "small neg" : "small pos";
    } catch (e) {
      out.dataset.state = "ERROR";
      out.textContent = `refused: ${e.message}`;
      out.className = "small neg";
    }
  }

  function wire() {
    for (const b of document.querySelectorAll("#controls button")) {
      b.addEventListener("click", () => (b.dataset.action === "flatten" ? confirmFlatten() : control(b.dataset.action)));
    }
    document.getElementById("order-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sendOrder(ev.target);
    });
  }

  return { wire, confirmFlatten, cancelOrder };
};
