// Vault: the index's status (notes, chunks, last run, skipped files with reasons), a re-index with a progress bar,
// and the search playground: BM25, dense and hybrid side by side.
import { api, fail, h, t, when } from "../core.js";

let box = null;
let polling = null;

export async function render(main) {
  box = h("div", { id: "index-status" });
  const query = h("input", { id: "playground-query", class: "grow", placeholder: t("vault.query"), "aria-label": t("vault.query") });
  const k = h("input", { type: "number", value: 5, min: 1, max: 50, style: "width:4em", "aria-label": "k" });
  const results = h("div", { class: "cols3", id: "playground" });
  const form = h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    if (!query.value.trim()) return;
    try {
      const found = await api("/v1/ui/search", { method: "POST", body: { query: query.value.trim(), k: Number(k.value) || 5 } });
      results.replaceChildren(...["bm25", "dense", "hybrid"].map((mode) => h("div", { dataset: { mode } },
        h("h3", {}, `${mode} `, h("small", { class: "muted" }, `${found.ms[mode]} ms`)),
        found.modes[mode].map((hit, i) => h("div", { class: "hit" },
          h("strong", {}, `${i + 1}. ${hit.title || hit.note}`), h("span", { class: "muted" }, ` ${hit.score.toFixed(3)}`),
          h("div", { class: "muted" }, hit.heading), h("div", { class: "text" }, hit.text))))));
    } catch (error) { fail(error); }
  } }, query, k, h("button", { type: "submit", class: "primary" }, t("vault.search")));
  main.append(h("h2", {}, t("vault.index")), box, h("h2", {}, t("vault.playground")), form, results);
  await load();
}

export function leave() { clearTimeout(polling); }

async function load() {
  try {
    const status = await api("/v1/ui/index");
    const rows = status.collections.map((c) => h("tr", { dataset: { collection: c.name } },
      h("td", {}, c.name), h("td", { class: "num notes" }, String(c.notes)), h("td", { class: "num" }, String(c.chunks)),
      h("td", {}, c.embedder), h("td", {}, when(c.last_run)), h("td", {}, c.vaults.join(", ")),
      h("td", {}, h("button", { class: "reindex", onclick: () => reindex(c.name) }, t("vault.reindex")))));
    box.replaceChildren(rows.length ? h("table", {},
      h("thead", {}, h("tr", {}, ["collection", "notes", "chunks", "embedder", "last_run", "vaults"].map((key) => h("th", {}, t(`vault.${key}`))), h("th", {}))),
      h("tbody", {}, rows)) : h("p", { class: "muted" }, t("vault.none")), jobView(status.job));
    if (status.job.state === "running") polling = setTimeout(load, 300);
  } catch (error) { fail(error); }
}

function jobView(job) {
  if (!job || job.state === "idle") return h("div", { id: "index-job" });
  const parts = [h("div", { class: "row" }, h("span", {}, `${job.collection}: ${job.state}`), job.item ? h("small", { class: "muted" }, job.item) : null)];
  if (job.state === "running") parts.push(h("progress", { max: job.total || 1, value: job.done || 0 }));
  if (job.error) parts.push(h("p", { class: "error" }, job.error));
  const r = job.report;
  if (r) {
    parts.push(h("p", { class: "ok" }, t("vault.report", r.notes, r.added, r.updated, r.deleted, r.unchanged, r.seconds)));
    if (r.skipped.length) {
      parts.push(h("h3", {}, t("vault.skipped")), h("ul", { id: "skipped" }, r.skipped.map((s) => h("li", {}, h("code", {}, s.path), `: ${s.reason}`))));
    }
  }
  return h("div", { id: "index-job", class: "card" }, parts);
}

async function reindex(collection) {
  try { await api("/v1/ui/index", { method: "POST", body: { collection } }); load(); } catch (error) { fail(error); }
}
