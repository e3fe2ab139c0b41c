"use strict";
// Shared by the pages: the token kept in this browser (localStorage, one per page), JSON calls that send it as
// "Authorization: Bearer", the token form, and small formatting helpers. Plain JS, no build step.
const MB = (() => {
  const page = document.body.className;
  const key = "mes-bridge.token." + page;
  const $ = (id) => document.getElementById(id);
  let ready = null;

  const token = () => localStorage.getItem(key) || "";

  function showTokenForm(message) {
    $("main").hidden = true;
    $("forget-token").hidden = true;
    $("token-form").hidden = false;
    const hint = $("token-form").querySelector(".hint");
    if (message) { hint.textContent = message; hint.classList.add("refused"); }
    $("token-input").focus();
  }

  // The page's handlers are bound once; a token entered later only tells the page (event "mb-token").
  function showPage() {
    $("token-form").hidden = true;
    $("main").hidden = false;
    $("forget-token").hidden = false;
    whoAmI();
    if (ready) { const first = ready; ready = null; first(); } else document.dispatchEvent(new Event("mb-token"));
  }

  // A FastAPI "detail" is a message, or for a body that does not fit a list of {loc, msg}.
  function detailText(data) {
    const detail = data && data.detail !== undefined ? data.detail : data;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d.loc ? d.loc.filter((p) => p !== "body").join(".") + ": " : "") + d.msg).join("; ");
    }
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token(), Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "no answer from the server (" + err.message + ")" } };
    }
    let data;
    try { data = await res.json(); } catch (err) { data = { detail: "HTTP " + res.status + " without JSON" }; }
    if (res.status === 401) showTokenForm("The server refused this token: " + detailText(data));
    return { ok: res.ok, status: res.status, data };
  }

  async function whoAmI() {
    const res = await fetch("/auth/me", { headers: { Authorization: "Bearer " + token() } }).catch(() => null);
    if (!res || !res.ok) { $("who").textContent = ""; return; }
    const me = await res.json();
    const binding = [...(me.work_centers || []), ...(me.machines || [])].join(", ");
    $("who").textContent = [me.role, me.name, binding].filter(Boolean).join(" · ");
  }

  function start(onReady) {
    ready = onReady;
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      localStorage.setItem(key, $("token-input").value.trim());
      $("token-input").value = "";
      showPage();
    });
    $("forget-token").addEventListener("click", () => { localStorage.removeItem(key); showTokenForm(""); });
    if (token()) showPage(); else showTokenForm("");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElementNS(tag.startsWith("svg:") ? "http://www.w3.org/2000/svg"
      : "http://www.w3.org/1999/xhtml", tag.replace(/^svg:/, ""));
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child);
    return node;
  }

  // Amounts arrive as exact decimal strings: group the thousands, never round-trip through a float.
  function money(text) {
    if (text === null || text === undefined) return "–";
    const [whole, frac] = String(text).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    return frac === undefined ? grouped : grouped + "." + frac;
  }

  function percent(share) { return (parseFloat(share) * 100).toFixed(1) + " %"; }

  return { $, api, start, token, detailText, el, money, percent };
})();
