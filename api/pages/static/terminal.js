"use strict";
// The scan terminal: a keyboard-wedge scanner types a barcode and Enter into the scan field, which keeps the
// focus; the answer of GET /scan/{barcode} is shown; Good / Scrap / Rework post POST /scan/report.
(() => {
  const { $, api, detailText } = MB;
  const scan = $("scan-input");
  let current = null; // the last answer of GET /scan/{barcode}
  let barcode = "";
  let busy = false;
  let lookups = 0;
  let unanswered = null; // a report sent without an answer: sent again, it keeps its id (harmless duplicate)

  const typing = (node) => node && (node.tagName === "INPUT" || node.tagName === "TEXTAREA") && node !== scan;

  function focusScan() { if (!$("main").hidden && !typing(document.activeElement)) scan.focus(); }

  function outcome(kind, text) {
    const box = $("outcome");
    box.className = "outcome " + kind;
    box.textContent = text;
    box.hidden = false;
  }

  function show(answer) {
    current = answer;
    $("order").hidden = $("report").hidden = answer === null;
    if (answer === null) return;
    $("o-work-order").textContent = answer.work_order;
    $("o-item").textContent = answer.item;
    $("o-operation").textContent = answer.operation;
    $("o-work-center").textContent = answer.work_center;
    $("o-waiting").textContent = answer.waiting;
    $("o-qty").textContent = answer.qty;
    $("o-bom").textContent = answer.bom_revision;
    $("o-routing").textContent = answer.routing_revision;
    $("o-serial-row").hidden = !answer.serial;
    $("o-serial").textContent = answer.serial || "";
    $("o-quality").textContent = answer.quality_standard || "–";
    $("qty-all").textContent = "all " + answer.waiting;
  }

  // The last reports made here (this page's memory only), newest first, so the operator can check a count.
  function remember(kind, text) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = new Date().toLocaleTimeString() + "  " + text;
    $("history").prepend(item);
    while ($("history").children.length > 8) $("history").lastChild.remove();
    $("history-card").hidden = false;
  }

  async function lookup(code, quiet) {
    const asked = ++lookups;
    const res = await api("GET", "/scan/" + encodeURIComponent(code));
    if (asked !== lookups) return false; // a later scan's answer counts, not this one
    if (res.status === 401) return false;
    if (!res.ok) {
      show(null);
      if (!quiet) outcome("refused", "Scan " + code + " refused: " + detailText(res.data));
      return false;
    }
    barcode = code;
    show(res.data);
    if (!quiet) outcome("info", res.data.work_order + " · operation " + res.data.operation + ": " +
      res.data.waiting + " waiting");
    return true;
  }

  async function report(kind) {
    if (!current || busy) return;
    const qty = $("qty").value.trim();
    if (!/^\d+(\.\d+)?$/.test(qty) || parseFloat(qty) <= 0) {
      outcome("refused", "Quantity must be a number above zero, not “" + qty + "”");
      return;
    }
    const body = { work_order: current.work_order, operation: current.operation, good: "0", scrap: "0", rework: "0" };
    body[kind] = qty;
    if ($("minutes").value.trim()) body.actual_minutes = $("minutes").value.trim();
    if ($("operator").value.trim()) body.operator = $("operator").value.trim();
    if (current.serial) body.serial = current.serial;
    const same = unanswered && unanswered.key === JSON.stringify(body);
    body.report_id = same ? unanswered.id : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
    busy = true; // one tap, one report: a second tap while the first is on its way is ignored
    document.querySelectorAll(".act").forEach((b) => { b.disabled = true; });
    const res = await api("POST", "/scan/report", body);
    busy = false;
    document.querySelectorAll(".act").forEach((b) => { b.disabled = false; });
    unanswered = res.status === 0 ? { key: JSON.stringify({ ...body, report_id: undefined }), id: body.report_id } : null;
    if (res.status === 401) return;
    const where = " at operation " + body.operation + " of " + body.work_order;
    if (res.ok && (res.data.status === "applied" || res.data.status === "duplicate")) {
      const text = qty + " " + kind + (res.data.status === "duplicate" ? " already" : "") + " reported" + where;
      outcome("ok", "✔ " + text);
      remember("ok", text);
      $("qty").value = "1";
      $("minutes").value = "";
      const still = await lookup(barcode, true);
      if (!still) $("outcome").textContent += " — nothing more waits here";
    } else {
      const reason = res.data.reason || detailText(res.data);
      outcome("refused", "✘ Not reported (" + (res.data.status || "HTTP " + res.status) + "): " + reason);
      remember("refused", qty + " " + kind + " refused" + where);
      if (res.status !== 0) await lookup(barcode, true); // show what waits now (another report may have taken it)
    }
    focusScan();
  }

  MB.start(() => {
    $("scan-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const code = scan.value.trim();
      scan.value = "";
      if (code) lookup(code, false);
    });
    document.querySelectorAll(".act").forEach((b) => b.addEventListener("click", () => report(b.dataset.kind)));
    $("qty-all").addEventListener("click", () => { if (current) $("qty").value = current.waiting; });
    document.querySelectorAll(".step").forEach((b) => b.addEventListener("click", () => {
      const next = Math.max(1, (parseInt($("qty").value, 10) || 0) + parseInt(b.dataset.step, 10));
      $("qty").value = String(next);
    }));
    // The scanner types wherever the focus is: give it back to the scan field after every tap elsewhere.
    scan.addEventListener("blur", () => setTimeout(focusScan, 0));
    document.addEventListener("click", () => setTimeout(focusScan, 0));
    document.addEventListener("keydown", (ev) => {
      if (!typing(ev.target) && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey) focusScan();
    });
    ["qty", "minutes", "operator"].forEach((id) => $(id).addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { ev.preventDefault(); ev.target.blur(); focusScan(); }
    }));
    focusScan();
  });
})();
