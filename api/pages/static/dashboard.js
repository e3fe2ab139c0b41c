"use strict";
// The WIP dashboard: figures from the JSON API (/wip, /events/problems, /collectors/health), redrawn whenever
// the server-sent stream /dashboard/stream says the journal or the stored problems changed.
(() => {
  const { $, api, el, money, percent, detailText } = MB;
  const COLORS = { sensor: "#2563eb", scan: "#16a34a", manual: "#ea580c" };
  let running = null;
  let again = false;

  // One row per bar: the label and the value are HTML text (readable at any width), the bar an SVG rect.
  function bars(box, rows, label) {
    box.replaceChildren();
    if (!rows.length) { box.append(el("p", { class: "empty" }, "nothing in WIP")); return; }
    const top = Math.max(...rows.map((r) => Math.abs(parseFloat(r.value))), 0) || 1;
    for (const row of rows) {
      const width = Math.max(0.5, (Math.abs(parseFloat(row.value)) / top) * 100);
      const svg = el("svg:svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "bar-svg",
        role: "img", "aria-label": label(row) + " " + row.value },
      el("svg:rect", { x: "0", y: "0", width: width.toFixed(2), height: "10", rx: "1", class: "bar-rect" }));
      box.append(el("div", { class: "bar-row" }, el("span", { class: "bar-label" }, label(row)), svg,
        el("span", { class: "bar-value" }, money(row.value))));
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

  async function health() {
    const res = await api("GET", "/collectors/health");
    const body = $("health");
    if (!res.ok) { body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "refused" }, detailText(res.data)))); return; }
    const rows = res.data.machines || [];
    body.replaceChildren(...rows.map((m) => el("tr", { class: m.connected ? "up" : "down", title: m.error || "" },
      el("td", {}, m.machine), el("td", {}, m.connected ? "● connected" : "● down" + (m.error ? ": " + m.error : "")),
      el("td", {}, age(m.last_value_age_s)), el("td", {}, String(m.spool_depth)), el("td", {}, String(m.events_per_s)))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "no collector has reported in")));
  }

  async function figures() {
    const [op, wc, prov, rejected] = await Promise.all([
      api("GET", "/wip?by=operation"), api("GET", "/wip?by=work-center"), api("GET", "/wip?by=provenance"),
      api("GET", "/events/problems?status=rejected&limit=10"),
    ]);
    if (op.ok) {
      $("wip-total").textContent = money(op.data.total);
      bars($("chart-operation"), op.data.rows, (r) => r.work_order + " · op " + r.operation);
    } else failed($("chart-operation"), op);
    if (wc.ok) bars($("chart-work-center"), wc.data.rows, (r) => r.work_center); else failed($("chart-work-center"), wc);
    if (prov.ok) shares($("chart-provenance"), prov.data.rows); else failed($("chart-provenance"), prov);
    const body = $("rejected");
    if (!rejected.ok) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "3", class: "refused" }, detailText(rejected.data))));
    } else {
      const rows = rejected.data.rows || [];
      body.replaceChildren(...rows.map((p) => el("tr", {}, el("td", {}, new Date(p.recorded_at).toLocaleString()),
        el("td", { class: "mono" }, p.event_id || "–"), el("td", {}, p.reason))));
      if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "empty" }, "none")));
    }
    $("updated").textContent = new Date().toLocaleTimeString();
  }

  // Changes that arrive while a refresh runs are folded into one more refresh after it.
  async function refresh() {
    if (running) { again = true; return; }
    do {
      again = false;
      running = Promise.all([figures(), health()]);
      await running;
    } while (again);
    running = null;
  }

  function live(state, text) { $("live-dot").className = "dot " + state; $("live-text").textContent = text; }

  function listen() {
    const stream = new EventSource("/dashboard/stream?token=" + encodeURIComponent(MB.token()));
    stream.addEventListener("open", () => live("up", "live"));
    stream.addEventListener("change", () => refresh());
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) { // refused (bad token, role) or gone: try again later
        live("down", "stream closed, retrying");
        setTimeout(listen, 5000);
      } else live("wait", "reconnecting");
    });
  }

  MB.start(() => {
    refresh();
    listen();
    setInterval(health, 5000); // collectors report in on their own clock
  });
})();
