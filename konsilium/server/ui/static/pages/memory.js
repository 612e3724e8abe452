// Memory: browse, search, add, edit, pin, forget (after a confirmation) and each memory's history.
import { api, confirmDialog, fail, h, serverInfo, t, when } from "../core.js";

let root = null;
let filter = { status: "current", query: "" };

export async function render(main) {
  const info = await serverInfo().catch((error) => { fail(error); return null; });
  if (!info || !info.memory) {
    main.append(h("p", { class: "muted" }, t("memory.off")), h("a", { href: "#/chat" }, t("nav.chat")));
    return;
  }
  const search = h("input", { type: "search", id: "memory-search", placeholder: t("memory.search"), "aria-label": t("memory.search") });
  const which = h("select", { id: "memory-status", "aria-label": t("memory.status") },
    ["current", "all", "forgotten"].map((s) => h("option", { value: s }, t(`memory.${s}`))));
  which.value = filter.status;
  search.value = filter.query;
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { filter.query = search.value.trim(); load(); }, 200); });
  which.addEventListener("change", () => { filter.status = which.value; load(); });
  const text = h("input", { id: "memory-new", class: "grow", placeholder: t("memory.new"), "aria-label": t("memory.new"), maxLength: 2000 });
  const add = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    try { await api("/v1/memories", { method: "POST", body: { text: text.value.trim() } }); text.value = ""; load(); } catch (error) { fail(error); }
  } }, text, h("button", { type: "submit" }, t("memory.add")));
  root = h("div", { id: "memory-list" });
  main.append(h("h2", {}, t("memory.title")), h("div", { class: "row" }, search, which), h("div", { style: "margin:.6em 0" }, add), root);
  load();
}

async function load() {
  try {
    const list = filter.query
      ? await api("/v1/memories/search", { method: "POST", body: { query: filter.query, k: 50 } })
      : await api(`/v1/memories?status=${filter.status}&limit=500`);
    const rows = list.data.map(row);
    root.replaceChildren(rows.length ? h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, t("memory.about")), h("th", {}, t("memory.kind")), h("th", {}, t("memory.created")), h("th", {}, ""))),
      h("tbody", {}, rows)) : h("p", { class: "muted" }, t("memory.none")));
  } catch (error) { fail(error); }
}

function row(memory) {
  const text = h("div", { class: "text" }, memory.text, memory.pinned ? h("span", { class: "badge" }, ` ${t("memory.pinned")}`) : null);
  const history = h("div", { class: "history", hidden: true });
  const cell = h("td", {}, text, history);
  const forgotten = memory.status && memory.status !== "current";
  const actions = h("td", {}, h("div", { class: "row" },
    h("button", { class: "link", onclick: () => edit(memory, cell) , disabled: forgotten }, t("memory.edit")),
    h("button", { class: "link", onclick: () => pin(memory), disabled: forgotten }, memory.pinned ? t("memory.unpin") : t("memory.pin")),
    h("button", { class: "link", onclick: () => showHistory(memory, history) }, t("memory.history")),
    h("button", { class: "link danger forget", onclick: () => forget(memory), disabled: forgotten }, t("memory.forget"))));
  return h("tr", { dataset: { id: memory.id } }, cell, h("td", {}, memory.about || ""), h("td", {}, memory.kind || ""),
    h("td", {}, when(memory.created)), actions);
}

function edit(memory, cell) {
  const area = h("textarea", { value: memory.text, rows: 2, style: "width:100%" });
  const save = h("button", { class: "primary", onclick: async () => {
    try { await api(`/v1/memories/${memory.id}`, { method: "PATCH", body: { text: area.value } }); load(); } catch (error) { fail(error); }
  } }, t("memory.save"));
  cell.replaceChildren(area, save, h("button", { onclick: load }, t("confirm.cancel")));
  area.focus();
}

async function pin(memory) {
  try { await api(`/v1/memories/${memory.id}`, { method: "PATCH", body: { pinned: !memory.pinned } }); load(); } catch (error) { fail(error); }
}

async function forget(memory) {
  if (!(await confirmDialog(t("memory.confirm", memory.text)))) return;
  try { await api(`/v1/memories/${memory.id}`, { method: "DELETE" }); load(); } catch (error) { fail(error); }
}

async function showHistory(memory, box) {
  if (!box.hidden) { box.hidden = true; return; }
  try {
    const events = await api(`/v1/memories/${memory.id}/history`);
    box.replaceChildren(h("ul", {}, events.data.map((e) => h("li", {}, `${when(e.time)} · ${e.event}: ${e.new_text || e.old_text || ""}${e.detail ? ` (${e.detail})` : ""}`))));
    box.hidden = false;
  } catch (error) { fail(error); }
}
