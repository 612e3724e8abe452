// Council: roles with their adapters, weights, label, scope and version; adapters live from /v1/adapters (tier,
// size, in use), with load / unload / pin from the page.
import { api, bytes, fail, h, serverInfo, t } from "../core.js";

let timer = null;
let adaptersBox = null;
let fitBox = null;
let budget = null;

export async function render(main) {
  const info = await serverInfo(true).catch((error) => { fail(error); return null; });
  if (!info) return;
  const engine = info.engine || {};
  main.append(h("p", { class: "muted" }, `${t("council.engine")}: ${engine.engine} · ${engine.architecture || ""} · ${engine.dtype || ""} · ${engine.device || ""} · adapters: ${info.adapter_support}`));
  main.append(h("h2", {}, t("council.roles")), rolesTable(info.roles));
  adaptersBox = h("div", { id: "adapters" });
  fitBox = h("p", { id: "adapter-fit", class: "muted" });
  budget = info.adapter_budget;
  main.append(h("h2", {}, t("council.adapters")), fitBox, adaptersBox, loadForm(info));
  await refresh();
  timer = setInterval(refresh, 2000); // live: tiers move as requests come and go
}

export function leave() { clearInterval(timer); }

function scopeText(scope) {
  if (!scope) return "–";
  const parts = [];
  if (scope.collections) parts.push(scope.collections.join(", "));
  if (scope.folders.length) parts.push(scope.folders.join(", "));
  if (scope.tags.length) parts.push(scope.tags.map((tag) => `#${tag}`).join(" "));
  if (!scope.enabled) parts.push("no retrieval");
  if (!scope.memory) parts.push("no memory");
  return parts.join(" · ") || "–";
}

function rolesTable(roles) {
  if (!roles.length) return h("p", { class: "muted" }, t("council.no_roles"));
  return h("table", { id: "roles" },
    h("thead", {}, h("tr", {}, ["role", "description", "weights", "label", "scope", "version"].map((k) => h("th", {}, t(`council.${k}`))))),
    h("tbody", {}, roles.map((role) => h("tr", { dataset: { role: role.id } },
      h("td", {}, h("strong", {}, role.id)),
      h("td", {}, role.description),
      h("td", {}, Object.entries(role.adapters).map(([name, weight]) => `${name} × ${weight}`).join(", ") || "–"),
      h("td", {}, h("span", { class: "badge" }, role.label)),
      h("td", {}, scopeText(role.scope)),
      h("td", {}, role.version ? `v${role.version} (${role.versions.map((v) => `v${v}`).join(", ")})` : "–")))));
}

async function refresh() {
  try {
    const list = await api("/v1/adapters");
    showFit(list.data);
    adaptersBox.replaceChildren(list.data.length ? h("table", {},
      h("thead", {}, h("tr", {}, ["name", "tier", "preferred", "size", "in_use", "actions"].map((k) => h("th", {}, t(`council.${k}`))))),
      h("tbody", {}, list.data.map((a) => h("tr", { dataset: { adapter: a.name } },
        h("td", {}, a.name, a.runtime ? h("span", { class: "badge" }, " runtime") : null),
        h("td", { class: "tier" }, (a.tier || "–").toUpperCase(), " ", a.pinned ? h("span", { class: "badge pinned" }, t("council.pinned")) : null),
        h("td", {}, a.preferred_tier),
        h("td", { class: "num" }, bytes(a.bytes)),
        h("td", { class: "num" }, String(a.in_use)),
        h("td", {}, h("div", { class: "row" },
          h("button", { class: "link pin", onclick: () => pin(a.name, !a.pinned) }, a.pinned ? t("council.unpin") : t("council.pin")),
          a.runtime ? h("button", { class: "link danger unload", onclick: () => unload(a.name) }, t("council.unload")) : null))))))
      : h("p", { class: "muted" }, t("council.no_adapters")));
  } catch (error) { fail(error); clearInterval(timer); }
}

// What sits on the GPU and in RAM against the cache's budgets (adapter_cache.gpu_bytes, cpu_bytes, max_loaded).
function showFit(adapters) {
  if (!budget) { fitBox.textContent = ""; return; }
  const on = (tier) => adapters.filter((a) => a.tier === tier);
  const sum = (list) => list.reduce((total, a) => total + (a.bytes || 0), 0);
  const gpu = on("gpu");
  fitBox.textContent = t("council.fit", gpu.length, budget.slots, bytes(sum(gpu)), bytes(budget.gpu_bytes),
    bytes(sum(on("cpu"))), bytes(budget.cpu_bytes));
}

function loadForm(info) {
  if (!info.runtime_loading) return h("p", { class: "muted" }, t("council.runtime_off"));
  const name = h("input", { id: "lora-name", placeholder: t("council.name"), "aria-label": t("council.name"), required: true });
  const path = h("input", { id: "lora-path", class: "grow", placeholder: t("council.path"), "aria-label": t("council.path"), required: true });
  return h("form", { class: "row card", id: "load-form", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("/v1/load_lora_adapter", { method: "POST", body: { lora_name: name.value.trim(), lora_path: path.value.trim() } });
      name.value = ""; path.value = "";
      refresh();
    } catch (error) { fail(error); }
  } }, h("strong", {}, t("council.load")), name, path, h("button", { type: "submit", class: "primary" }, t("council.load")));
}

async function pin(name, pinned) {
  try { await api(`/v1/ui/adapters/${encodeURIComponent(name)}/pin`, { method: "POST", body: { pinned } }); refresh(); } catch (error) { fail(error); }
}

async function unload(name) {
  try { await api("/v1/unload_lora_adapter", { method: "POST", body: { lora_name: name } }); refresh(); } catch (error) { fail(error); }
}
