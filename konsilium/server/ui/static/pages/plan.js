// Plan: a model config.json (pasted or from a file), dtype, context and GPU memory -> the planner's table and
// the explain view; a second setting to compare side by side.
import { api, bytes, fail, h, lang, t } from "../core.js";

const ROWS = [
  ["plan.row.model_type", "model_type", String],
  ["plan.row.total_params", "total_params", (v) => `${(v / 1e9).toFixed(3)} B`],
  ["plan.row.active_params", "active_params", (v) => `${(v / 1e9).toFixed(3)} B`],
  ["plan.row.bits_per_weight", "bits_per_weight", String],
  ["plan.row.weights_bytes", "weights_bytes", bytes],
  ["plan.row.kv_bytes_per_token", "kv_bytes_per_token", (v) => Math.round(v).toLocaleString()],
  ["plan.row.kv_cache_bytes", "kv_cache_bytes", bytes],
  ["plan.row.activation_bytes_estimate", "activation_bytes_estimate", bytes],
  ["plan.row.total_bytes", "total_bytes", bytes],
  ["plan.row.fits", "fits", (v) => (v === null || v === undefined ? "–" : v ? t("plan.yes") : t("plan.no"))],
  ["plan.row.max_context_fits", "max_context_fits", (v) => (v ? v.toLocaleString() : "–")],
  ["plan.row.trained_context", "trained_context", (v) => (v ? v.toLocaleString() : "–")],
  ["plan.row.decode_tokens_per_s_upper_bound", "decode_tokens_per_s_upper_bound", (v) => (v ? v.toFixed(1) : "–")],
];
const DTYPES = ["bf16", "fp16", "fp8", "int8", "int4", "q4_k_m", "q8_0"];
const KV = ["bf16", "fp16", "fp8", "int8", "q8_0", "q4_0"];

function settingForm(n, defaults) {
  const dtype = h("select", { name: "dtype", "aria-label": t("plan.dtype") }, DTYPES.map((d) => h("option", {}, d)));
  const kv = h("select", { name: "kv_dtype", "aria-label": t("plan.kv") }, KV.map((d) => h("option", {}, d)));
  const context = h("input", { name: "context", type: "number", min: 1, value: defaults.context, "aria-label": t("plan.context") });
  const gpu = h("input", { name: "gpu_mem", value: defaults.gpu, placeholder: "24GB", "aria-label": t("plan.gpu"), style: "width:7em" });
  dtype.value = defaults.dtype;
  const box = h("fieldset", { class: "row", dataset: { setting: n } }, h("legend", {}, t("plan.setting", n)),
    t("plan.dtype"), dtype, t("plan.kv"), kv, t("plan.context"), context, t("plan.gpu"), gpu);
  box.read = () => ({ dtype: dtype.value, kv_dtype: kv.value, context: Number(context.value), gpu_mem: gpu.value.trim() || null });
  return box;
}

export async function render(main) {
  const config = h("textarea", { id: "plan-config", class: "config", placeholder: t("plan.paste"), "aria-label": t("plan.config") });
  const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": t("plan.config") });
  file.addEventListener("change", async () => { if (file.files[0]) config.value = await file.files[0].text(); });
  const first = settingForm(1, { dtype: "bf16", context: 32768, gpu: "24GB" });
  const second = settingForm(2, { dtype: "int4", context: 32768, gpu: "24GB" });
  second.hidden = true;
  const compare = h("input", { type: "checkbox", id: "plan-compare", onchange: () => { second.hidden = !compare.checked; } });
  const out = h("div", { id: "plan-result" });
  const form = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    let parsed;
    try { parsed = JSON.parse(config.value); } catch (error) { fail(new Error(`config.json: ${error.message}`)); return; }
    const settings = [first.read(), ...(compare.checked ? [second.read()] : [])];
    try {
      const result = await api("/v1/ui/plan", { method: "POST", body: { config: parsed, settings, lang } });
      out.replaceChildren(planTable(result.plans), explainTable(result.explain));
    } catch (error) { fail(error); }
  } }, h("h2", {}, t("plan.config")), config, h("div", { class: "row" }, file), first,
  h("label", { class: "row" }, compare, t("plan.compare")), second, h("button", { type: "submit", class: "primary" }, t("plan.run")));
  main.append(form, out);
}

function planTable(plans) {
  return h("table", { id: "plan-table", class: "card" },
    h("thead", {}, h("tr", {}, h("th", {}), plans.map((p, i) => h("th", { class: "num" }, `${t("plan.setting", i + 1)}: ${p.setting.dtype}, ${p.setting.context.toLocaleString()}${p.setting.gpu_mem ? `, ${p.setting.gpu_mem}` : ""}`)))),
    h("tbody", {}, ROWS.map(([label, key, format]) => h("tr", {}, h("td", {}, t(label)),
      plans.map((p) => h("td", { class: "num" }, p[key] === undefined || p[key] === null ? "–" : format(p[key])))))));
}

function explainTable(explained) {
  return h("details", { id: "plan-explain", open: true }, h("summary", {}, t("plan.explain")),
    h("table", {}, h("thead", {}, h("tr", {}, ["field", "value", "meaning", "change"].map((k) => h("th", {}, t(`plan.${k}`))))),
      h("tbody", {}, explained.fields.map((f) => h("tr", {}, h("td", {}, h("code", {}, f.field)), h("td", {}, f.value),
        h("td", {}, f.meaning, f.effect ? h("div", { class: "muted" }, f.effect) : null), h("td", {}, f.change_text || ""))))));
}
