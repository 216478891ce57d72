/* The run's server-sent event stream, read with fetch() rather than EventSource so that every reconnect,
 * whatever ended the last connection (a network blip, a proxy, a server restart), sends Last-Event-ID
 * and the server replays what was missed. Reconnects back off from the server's `retry` up to 8 s. */
"use strict";

const EventStream = (url, { onMessage, onState }) => {
  let lastId = null;
  let backoff = 500;
  let connects = 0;

  async function run() {
    for (;;) {
      const headers = { Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      try {
        const resp = await fetch(url, { headers, credentials: "same-origin", cache: "no-store" });
        if (resp.status === 401 || resp.status === 403) {
          onState("unauthorised", connects);
          return;
        }
        if (!resp.ok || !resp.body) throw new Error(`stream ${resp.status}`);
        connects += 1;
        backoff = 500;
        onState("live", connects);
        await read(resp.body);
      } catch (_) {
        /* the connection failed or dropped: reconnect below */
      }
      onState("reconnecting", connects);
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 8000);
    }
  }

  /** The text/event-stream format: fields up to a blank line make one message; ':' lines are comments. */
  async function read(body) {
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
          if (data.length) dispatch(name, id, data.join("\n"));
          name = "message";
          data = [];
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
        else if (field === "retry" && /^\d+$/.test(val)) backoff = Number(val);
      }
    }
  }

  function dispatch(name, id, text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return; // not ours: the gateway only sends JSON
    }
    if (id !== null) lastId = id;
    onMessage(name, id, msg && typeof msg === "object" ? msg : {});
  }

  return { run };
};
