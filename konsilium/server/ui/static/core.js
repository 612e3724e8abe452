// What every page shares: the API (with the session's key), labels in the browser's language, DOM helpers.
import { LABELS } from "./i18n.js";

const KEY = "konsilium.key";
export const lang = (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";

export function t(key, ...args) {
  const labels = LABELS[lang] && key in LABELS[lang] ? LABELS[lang] : LABELS.en;
  let text = key in labels ? labels[key] : key;
  args.forEach((arg, i) => { text = text.replace(`{${i}}`, arg); });
  return text;
}

// h("button", {class: "x", onclick: f}, "text", child): elements built from data, never from HTML strings.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && name !== "list" && name !== "form") el[name] = value === true ? true : value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function apiKey() { return sessionStorage.getItem(KEY) || ""; }
export function setApiKey(key) { key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY); }

let loginWaiters = [];

// A 401 opens the login form once; every request that got it is retried with the key the user gives.
function askForKey(message) {
  const dialog = document.getElementById("login");
  document.getElementById("login-error").textContent = message || "";
  if (!dialog.open) dialog.showModal();
  document.getElementById("login-key").focus();
  return new Promise((resolve) => loginWaiters.push(resolve));
}

export function initLogin() {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", () => {
    const key = document.getElementById("login-key").value.trim();
    setApiKey(key);
    document.getElementById("logout").hidden = !key;
    const waiting = loginWaiters;
    loginWaiters = [];
    waiting.forEach((resolve) => resolve());
  });
  const logout = document.getElementById("logout");
  logout.hidden = !apiKey();
  logout.addEventListener("click", () => { setApiKey(""); location.reload(); });
}

export async function request(path, { method = "GET", body, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { accept: "application/json" };
    if (apiKey()) headers.authorization = `Bearer ${apiKey()}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401 && attempt < 5) {
      await askForKey(attempt ? t("login.wrong") : "");
      continue;
    }
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new ApiError(response.status, (error.error && error.error.message) || `${response.status} ${response.statusText}`);
    }
    return response;
  }
}

export async function api(path, options) {
  const response = await request(path, options);
  return response.json();
}

// Server-sent events of a streamed answer, one parsed JSON object each, until [DONE].
export async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("confirm-yes").focus();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true }));
}

export function status(text, isError = false) {
  const el = document.getElementById("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "muted";
}

export function fail(error) { status(error.message || String(error), true); }

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// One formatter for every date: making one per call costs ~0.1 ms, 20 ms for a page of the conversation list.
const DATES = new Intl.DateTimeFormat(lang === "ru" ? "ru-RU" : "en-GB", { dateStyle: "short", timeStyle: "short" });

export function when(seconds) {
  return seconds ? DATES.format(new Date(seconds * 1000)) : "–";
}

let infoCache = null;
export async function serverInfo(fresh = false) {
  if (!infoCache || fresh) infoCache = await api("/v1/ui/info");
  return infoCache;
}
