"use strict";
// The WIP dashboard: the figures of /dashboard.json (the same as /wip, /events/problems, /collectors/health), redrawn
// whenever the server-sent stream /dashboard/stream says the journal or the stored problems changed.
(() => {
  const { $, api, el, money, percent, detailText } = MB;
  const MAX_BARS = 12;
  const STALE_S = 30; // a collector that has not reported for this long is shown as silent, whatever it said last
  const COLORS = { sensor: "#2563eb", scan: "#16a34a", manual: "#ea580c" };
  let running = null;
  let marker = null;
  let again = false;

  // One row per bar, largest first: the label and the value are HTML text (readable at any width), the bar an SVG
  // rect; past MAX_BARS the rest is one line with its count and sum.
  function bars(box, all, label) {
    box.replaceChildren();
    if (!all.length) { box.append(el("p", { class: "empty" }, "nothing in WIP")); return; }
    const sorted = [...all].sort((a, b) => parseFloat(b.value) - parseFloat(a.value));
    const rows = sorted.slice(0, MAX_BARS);
    const top = Math.max(...rows.map((r) => Math.abs(parseFloat(r.value))), 0) || 1;
    for (const row of rows) {
      const width = Math.max(0.5, (Math.abs(parseFloat(row.value)) / top) * 100);
      const svg = el("svg:svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "bar-svg",
        role: "img", "aria-label": label(row) + " " + row.value },
      el("svg:rect", { x: "0", y: "0", width: width.toFixed(2), height: "10", rx: "1", class: "bar-rect" }));
      box.append(el("div", { class: "bar-row" }, el("span", { class: "bar-label", title: label(row) }, label(row)), svg,
        el("span", { class: "bar-value" }, money(row.value))));
    }
    const rest = sorted.slice(MAX_BARS);
    if (rest.length) {
      const cents = rest.reduce((sum, r) => sum + Math.round(parseFloat(r.value) * 100), 0);
      box.append(el("p", { class: "empty" }, "+ " + rest.length + " more: " + money((cents / 100).toFixed(2))));
    }
  }

  function shares(box, rows) {
    box.replaceChildren();
    if (!rows.length) { box.append(el("p", { class: "empty" }, "nothing in WIP")); return; }
    const svg = el("svg:svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "share-svg" });
    const legend = el("ul", { class: "legend" });
    let x = 0;
    for (const row of rows) {
      const w = Math.max(0, parseFloat(row.share) * 100);
      const color = COLORS[row.provenance] || "#6b7280";
      svg.append(el("svg:rect", { x: x.toFixed(2), y: "0", width: w.toFixed(2), height: "10", fill: color }));
      x += w;
      legend.append(el("li", {}, el("span", { class: "swatch", style: "background:" + color }),
        row.provenance + " " + percent(row.share) + " (" + money(row.value) + ")"));
    }
    box.append(svg, legend);
  }

  function failed(box, res) {
    box.replaceChildren(el("p", { class: "refused" }, "HTTP " + res.status + ": " + detailText(res.data)));
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    const s = parseFloat(seconds);
    return s < 120 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
  }

  // A table body: one row per item (cells: its texts), or one row saying there is none.
  function rows(body, items, cells, { none, attrs = () => ({}), mono = -1 }) {
    body.replaceChildren(...items.map((item) => el("tr", attrs(item),
      ...cells(item).map((text, i) => el("td", i === mono ? { class: "mono" } : {}, text)))));
    const columns = body.closest("table").querySelectorAll("th").length;
    if (!items.length) body.append(el("tr", {}, el("td", { colspan: String(columns), class: "empty" }, none)));
  }

  function health(machines) {
    const link = (m) => (m.report_age_s > STALE_S ? "● silent" : m.connected ? "● connected" : "● down")
      + (m.error ? ": " + m.error : "");
    rows($("health"), machines, (m) => [m.machine, link(m), age(m.last_value_age_s), String(m.spool_depth),
      String(m.events_per_s), age(m.report_age_s)], {
      none: "no collector has reported in",
      attrs: (m) => ({ class: m.connected && m.report_age_s <= STALE_S ? "up" : "down", title: m.error || "" }),
    });
  }

  function rejected(problems) {
    rows($("rejected"), problems, (p) => [new Date(p.recorded_at).toLocaleString(), p.event_id || "–", p.reason],
      { none: "none", mono: 1 });
  }

  async function figures() {
    const asOf = $("as-of").value; // a date: its end (UTC); late events dated before it still move the figures
    const res = await api("GET", "/dashboard.json" + (asOf ? "?as_of=" + encodeURIComponent(asOf) : ""));
    $("wip-label").textContent = asOf ? "WIP value at the end of " + asOf + " (UTC)" : "WIP value now";
    if (!res.ok) {
      for (const id of ["chart-operation", "chart-work-center", "chart-provenance"]) failed($(id), res);
      return;
    }
    const wip = res.data.wip;
    $("wip-total").textContent = money(wip.operation.total);
    bars($("chart-operation"), wip.operation.rows, (r) => r.work_order + " · op " + r.operation);
    bars($("chart-work-center"), wip["work-center"].rows, (r) => r.work_center);
    shares($("chart-provenance"), wip.provenance.rows);
    rejected(res.data.rejected);
    health(res.data.collectors);
    $("updated").textContent = new Date().toLocaleTimeString();
  }

  // Changes that arrive while a refresh runs are folded into one more refresh after it.
  async function refresh() {
    if (running) { again = true; return; }
    do {
      again = false;
      running = figures();
      await running;
    } while (again);
    running = null;
  }

  function live(state, text) { $("live-dot").className = "dot " + state; $("live-text").textContent = text; }

  let stream = null;
  let retry = null;

  function listen() {
    if (stream) stream.close();
    clearTimeout(retry);
    const source = new EventSource("/dashboard/stream?token=" + encodeURIComponent(MB.token()));
    stream = source;
    source.addEventListener("open", () => live("up", "live"));
    // Each (re)connection sends the marker first: redraw only when it moved since the last one seen.
    source.addEventListener("change", (ev) => {
      live("up", "live");
      if (ev.data !== marker) { marker = ev.data; refresh(); }
    });
    source.addEventListener("trouble", (ev) => live("down", JSON.parse(ev.data)));
    source.addEventListener("error", () => {
      if (source !== stream) return;
      if (source.readyState === EventSource.CLOSED) { // refused (bad token, role) or gone: try again later
        live("down", "stream closed, retrying");
        retry = setTimeout(listen, 5000);
      } else live("wait", "reconnecting");
    });
  }

  MB.start(() => {
    $("as-of").addEventListener("change", refresh);
    $("as-of-now").addEventListener("click", () => { $("as-of").value = ""; refresh(); });
    refresh();
    listen();
    document.addEventListener("mb-token", () => { marker = null; listen(); refresh(); });
    setInterval(refresh, 5000); // collectors report their health on their own clock
  });
})();
