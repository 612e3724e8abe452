// Chat: streamed answers in Markdown, who answered (auto's choice shown, dual side by side), the model's reasoning
// folded above its answer, each answer's sources (title, heading, the passage, an Obsidian link and a preview; the
// answer's [[wikilinks]] to them open that preview, a link to any other note of the index opens its preview below the
// answer) and memories, stop, and the conversation log (a logged conversation shows each answer with its own reasoning
// and sources).
import { api, events, fail, h, request, serverInfo, status, t, when } from "../core.js";
import { findHeading, linkNotes } from "../links.js";
import { render as markdown } from "../md.js";

const state = {
  messages: [], logged: new Map(), controller: null, conversationId: null, notes: new Map(), search: "", offset: 0, listRequests: 0,
};
let ui = null;

export async function render(main) {
  const info = await serverInfo(true).catch((error) => { fail(error); return null; });
  const models = info ? info.models : [];
  const picker = h("select", { id: "model", "aria-label": t("chat.model"), title: t("chat.model") },
    models.map((id) => h("option", { value: id }, id === info.model_id ? `${id} (${t("chat.base")})` : id)));
  picker.value = sessionStorage.getItem("konsilium.model") || (info ? info.model_id : "");
  picker.addEventListener("change", () => { sessionStorage.setItem("konsilium.model", picker.value); syncDual(); });
  const dual = h("input", { type: "checkbox", id: "dual" });
  const dualLabel = h("label", { htmlFor: "dual", class: "muted" }, dual, " ", t("chat.dual"));
  const input = h("textarea", { id: "prompt", placeholder: t("chat.placeholder"), "aria-label": t("chat.placeholder"), rows: 3 });
  const send = h("button", { id: "send", class: "primary", type: "submit" }, t("chat.send"));
  const stop = h("button", { id: "stop", type: "button", hidden: true, onclick: stopAnswer }, t("chat.stop"));
  const list = h("ul", { id: "conversations", "aria-label": "conversations" });
  const more = h("button", { class: "link", hidden: true, onclick: () => loadConversations(true) }, t("chat.more"));
  const search = h("input", { type: "search", id: "conv-search", placeholder: t("chat.search"), "aria-label": t("chat.search") });
  const messages = h("div", { class: "messages", id: "messages", "aria-live": "polite" });
  const composer = h("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); ask(); } },
    input, h("div", { class: "opts" }, picker, dualLabel, h("div", { class: "row" }, send, stop)));
  ui = { picker, dual, dualLabel, input, send, stop, list, more, search, messages, info };

  function syncDual() {
    const base = !info || picker.value === info.model_id;
    dual.disabled = base;
    if (base) dual.checked = false;
  }
  syncDual();

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.search = search.value.trim(); loadConversations(); }, 150);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); ask(); }
  });
  main.addEventListener("keydown", (event) => { if (event.key === "Escape" && state.controller) stopAnswer(); });

  main.append(h("div", { class: "chat" },
    h("aside", { class: "convs" },
      h("button", { id: "new-chat", onclick: newChat }, t("chat.new")),
      h("div", { style: "margin-top:.5em" }, search), list, more),
    h("section", { class: "thread" }, messages, composer)));
  showThread();
  input.focus();
  loadConversations();
}

export function leave() { stopAnswer(); }

function newChat() {
  stopAnswer();
  state.messages = [];
  state.logged = new Map();
  state.conversationId = null;
  showThread();
  markCurrent();
  ui.input.focus();
}

function showThread() {
  ui.messages.replaceChildren();
  if (!state.messages.length) ui.messages.append(h("p", { class: "muted", id: "empty" }, t("chat.empty")));
}

async function loadConversations(append = false) {
  if (!ui || !ui.info || !ui.info.log) return;
  state.offset = append ? state.offset + 200 : 0;
  const query = new URLSearchParams({ limit: "200", offset: String(state.offset) });
  if (state.search) query.set("search", state.search);
  const asked = ++state.listRequests;
  try {
    const page = await api(`/v1/ui/conversations?${query}`);
    if (asked !== state.listRequests) return; // a newer search has been typed since
    const items = page.data.map((c) => h("li", {},
      h("button", { dataset: { id: c.id }, title: c.title, onclick: () => openConversation(c.id) },
        c.title || c.question || c.id, h("br"),
        h("small", {}, `${when(c.time)} · ${c.role || c.model}${c.turns > 1 ? ` · ${t("chat.turns", c.turns)}` : ""}`))));
    if (append) ui.list.append(...items);
    else ui.list.replaceChildren(...(items.length ? items : [h("li", { class: "muted" }, t("chat.none"))]));
    ui.more.hidden = !page.has_more;
    ui.list.dataset.search = state.search;
    markCurrent();
  } catch (error) { fail(error); }
}

function markCurrent() {
  ui.list.querySelectorAll("button[data-id]").forEach((b) => b.classList.toggle("current", b.dataset.id === state.conversationId));
}

async function openConversation(id) {
  stopAnswer();
  try {
    const exchange = await api(`/v1/ui/conversations/${encodeURIComponent(id)}`);
    const answers = [...(exchange.answers || [])]; // what the log kept of each earlier answer (null: not found)
    state.messages = [];
    state.logged = new Map();
    for (const m of exchange.messages) {
      if (m.role !== "user" && m.role !== "assistant") continue;
      if (m.role === "assistant") state.logged.set(state.messages.length, answers.shift() || null);
      state.messages.push({ role: m.role, content: typeof m.content === "string" ? m.content : (m.content || []).map((p) => p.text || "").join("") });
    }
    state.conversationId = id;
    showThread();
    showEarlier(state.messages.length);
    state.messages.push({ role: "assistant", content: exchange.response });
    const last = addAnswer({ id: exchange.role, label: "" });
    last.think(exchange.reasoning || "");
    last.finish(exchange.response);
    last.showSources(exchange.sources || []);
    markCurrent();
    ui.input.focus();
  } catch (error) { fail(error); }
}

// A long conversation shows its last messages at once and older ones on demand, a batch at a time: rendering
// thousands of messages in one go would freeze the page.
const BATCH = 100;

function showEarlier(end) {
  const start = Math.max(0, end - BATCH);
  const batch = document.createDocumentFragment();
  state.messages.slice(start, end).forEach((message, offset) => {
    if (message.role === "user") { addUser(message.content, batch); return; }
    const logged = state.logged.get(start + offset);
    const answer = addAnswer(logged ? { id: logged.role, label: "" } : null, "", batch);
    answer.think(logged?.reasoning || "");
    answer.finish(message.content);
    answer.showSources(logged?.sources || []); // not in the log: its links are looked up by name
  });
  const button = ui.messages.querySelector(".earlier");
  if (button) button.remove();
  ui.messages.prepend(batch);
  if (start > 0) {
    ui.messages.prepend(h("button", { class: "link earlier", onclick: () => showEarlier(start) }, t("chat.earlier", start)));
  }
}

function addUser(text, parent = ui.messages) {
  document.getElementById("empty")?.remove();
  parent.append(h("div", { class: "msg user" }, h("div", { class: "who" }, t("chat.you")), h("div", { class: "body" }, text)));
}

function roleText(role, model) {
  const name = (role && role.id) || t("chat.base");
  const label = role && role.label && role.label !== "neutral" ? ` · ${role.label}` : "";
  return (model === "auto" ? t("chat.auto_chose", name) : name) + label;
}

// One answer's block: who, its reasoning (folded, plain text: it is not the answer), the text (re-rendered as it
// streams), then sources and memories.
function addAnswer(role = null, model = "", parent = ui.messages) {
  document.getElementById("empty")?.remove();
  const who = h("div", { class: "who" }, role ? roleText(role, model) : "");
  const thoughtLabel = h("summary", {}, t("chat.thinking_now"));
  const thought = h("div", { class: "thought" });
  const thinking = h("details", { class: "thinking", hidden: true }, thoughtLabel, thought);
  const body = h("div", { class: "answer" });
  const extra = h("div");
  const box = h("div", { class: "msg assistant" }, who, thinking, body, extra);
  const showLinked = linkedPreview(extra);
  parent.append(box);
  let text = "";
  let scheduled = false;
  let done = false; // wikilinks are resolved once the answer is whole and its sources are known
  let sources = null; // null: not known yet (a stopped answer never learns them): its links stay as they are
  let openSource = () => false; // shows a source's preview; false: the note is not a source
  const paint = () => {
    scheduled = false;
    body.replaceChildren(markdown(text));
    if (done && sources) linkNotes(body, sources, (note, heading) => openSource(note, heading) || showLinked(note, heading));
  };
  return {
    box,
    setRole(r) { who.textContent = roleText(r, model); who.dataset.role = (r && r.id) || ""; },
    think(piece) {
      if (!piece) return;
      thinking.hidden = false;
      thought.append(piece);
      keepScrolled();
    },
    append(piece) {
      const first = !text;
      thoughtLabel.textContent = t("chat.thinking"); // the answer has begun: the thinking is over
      text += piece;
      if (first) paint(); // the first words show at once; later ones at most once a frame
      else if (!scheduled) { scheduled = true; requestAnimationFrame(paint); }
      keepScrolled();
    },
    finish(whole) {
      if (whole !== undefined) text = whole;
      thoughtLabel.textContent = t("chat.thinking");
      done = true;
      paint();
    },
    stopped() { box.append(h("div", { class: "stopped" }, t("chat.stopped"))); },
    get text() { return text; },
    showSources(list) {
      if (!list || !list.length) { this.linkTo([], () => false); return; }
      const panel = sourcesPanel(list);
      extra.append(panel.element);
      this.linkTo(list, panel.open);
    },
    linkTo(list, open) { sources = list; openSource = open; if (done) paint(); },
    showMemories(memories) { if (memories && memories.length) extra.append(memoriesPanel(memories)); },
  };
}

function keepScrolled() {
  const m = ui.messages;
  if (m.scrollHeight - m.scrollTop - m.clientHeight < 120) m.scrollTop = m.scrollHeight;
}

async function noteInfo(note) {
  if (!state.notes.has(note)) {
    state.notes.set(note, api(`/v1/ui/note?${new URLSearchParams({ note })}`).catch((error) => ({ error: error.message })));
  }
  return state.notes.get(note);
}

export function obsidianUrl(vaultName, note) {
  return `obsidian://open?vault=${encodeURIComponent(vaultName)}&file=${encodeURIComponent(note)}`;
}

// The sources of an answer; `open(note, heading)` shows a note's preview there (for the answer's wikilinks).
function sourcesPanel(sources) {
  const panel = h("details", { class: "sources", open: true }, h("summary", {}, t("chat.sources", sources.length)));
  const previews = new Map(); // note -> show its preview, at a heading
  sources.forEach((source, index) => {
    const passage = h("div", { class: "passage" });
    const link = h("a", { class: "obsidian", href: "#", hidden: true }, t("chat.open"));
    const preview = h("div", { class: "preview", hidden: true });
    const toggle = h("button", { class: "link preview-toggle", type: "button" }, t("chat.preview"));
    const show = async () => {
      const info = await noteInfo(source.note);
      preview.replaceChildren(info.error ? h("p", { class: "error" }, info.error) : markdown(info.text));
      preview.hidden = false;
      toggle.textContent = t("chat.hide");
    };
    toggle.addEventListener("click", () => {
      if (preview.hidden) return show();
      preview.hidden = true;
      toggle.textContent = t("chat.preview");
    });
    const item = h("div", { class: "source", dataset: { note: source.note } },
      h("div", {}, h("strong", {}, `${index + 1}. ${source.title || source.note}`),
        source.heading ? h("span", { class: "muted" }, ` — ${source.heading}`) : null),
      h("div", { class: "muted", style: "font-size:.85em" }, source.note),
      passage, h("div", { class: "row" }, link, toggle), preview);
    panel.append(item);
    if (!previews.has(source.note)) {
      previews.set(source.note, async (heading) => {
        panel.open = true;
        if (preview.hidden) await show();
        (findHeading(preview, heading) || item).scrollIntoView({ block: "nearest" });
      });
    }
    noteInfo(source.note).then((info) => {
      if (info.error) { passage.textContent = info.error; return; }
      link.href = obsidianUrl(info.vault_name, info.note);
      link.hidden = false;
      const match = info.passages.find((p) => p.heading === source.heading) || info.passages[0];
      passage.textContent = match ? match.text : "";
    });
  });
  const open = (note, heading) => {
    const show = previews.get(note);
    if (show) show(heading);
    return Boolean(show);
  };
  return { element: panel, open };
}

// The preview of a note an answer links to that is not among its sources, below the answer: one at a time.
function linkedPreview(parent) {
  const title = h("summary", {});
  const link = h("a", { class: "obsidian", href: "#", hidden: true }, t("chat.open"));
  const path = h("div", { class: "muted", style: "font-size:.85em" });
  const preview = h("div", { class: "preview" });
  const panel = h("details", { class: "linked", open: true }, title, path, h("div", { class: "row" }, link), preview);
  return async (note, heading) => {
    if (!panel.isConnected) parent.append(panel);
    panel.dataset.note = note;
    panel.open = true;
    title.textContent = t("chat.linked", note);
    path.textContent = note;
    link.hidden = true;
    preview.replaceChildren(h("p", { class: "muted" }, t("loading")));
    const info = await noteInfo(note);
    if (panel.dataset.note !== note) return; // another link was followed meanwhile
    if (info.error) { preview.replaceChildren(h("p", { class: "error" }, info.error)); return; }
    title.textContent = t("chat.linked", info.title || note);
    link.href = obsidianUrl(info.vault_name, info.note);
    link.hidden = false;
    preview.replaceChildren(markdown(info.text));
    (findHeading(preview, heading) || panel).scrollIntoView({ block: "nearest" });
  };
}

function memoriesPanel(memories) {
  return h("details", { class: "memories" }, h("summary", {}, t("chat.memories", memories.length)),
    h("ul", {}, memories.map((m) => h("li", { dataset: { id: m.id } }, m.text, m.pinned ? h("span", { class: "badge" }, ` ${t("memory.pinned")}`) : null))));
}

function busy(on) {
  ui.send.hidden = on;
  ui.stop.hidden = !on;
}

function stopAnswer() {
  if (state.controller) state.controller.abort();
}

async function ask() {
  const text = ui.input.value.trim();
  if (!text || state.controller) return;
  ui.input.value = "";
  addUser(text);
  state.messages.push({ role: "user", content: text });
  const model = ui.picker.value;
  state.controller = new AbortController();
  busy(true);
  status("");
  try {
    if (ui.dual.checked) await askDual(model);
    else await askStreamed(model);
  } finally {
    state.controller = null;
    busy(false);
    ui.input.focus();
  }
}

async function askStreamed(model) {
  const answer = addAnswer(null, model);
  answer.box.dataset.streaming = "1";
  const body = { model, messages: state.messages, stream: true };
  try {
    const response = await request("/v1/chat/completions", { method: "POST", body, signal: state.controller.signal });
    for await (const chunk of events(response)) {
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.delta && choice.delta.role) answer.setRole(chunk.role || null); // the opening chunk
      if (choice && choice.delta && choice.delta.reasoning_content) answer.think(choice.delta.reasoning_content);
      if (choice && choice.delta && choice.delta.content) answer.append(choice.delta.content);
      if (choice && choice.finish_reason) {
        answer.showSources(chunk.sources);
        answer.showMemories(chunk.memories);
      }
      if (chunk.id) state.conversationId = chunk.id;
    }
    answer.finish();
  } catch (error) {
    if (error.name === "AbortError") answer.stopped();
    else { fail(error); answer.box.append(h("div", { class: "error" }, error.message)); }
  } finally {
    delete answer.box.dataset.streaming;
  }
  state.messages.push({ role: "assistant", content: answer.text });
  loadConversations().then(markCurrent);
}

async function askDual(model) {
  const row = h("div", { class: "duo" });
  ui.messages.append(row);
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST", body: { model, messages: state.messages, konsilium: { dual: true } }, signal: state.controller.signal,
    });
    const panel = response.sources && response.sources.length ? sourcesPanel(response.sources) : null;
    for (const choice of response.choices) {
      const answer = addAnswer(choice.role, model === "auto" ? "" : model, row);
      answer.setRole(choice.role);
      answer.think(choice.message.reasoning_content || "");
      answer.finish(choice.message.content || "");
      answer.linkTo(panel ? response.sources : [], panel ? panel.open : () => false);
    }
    if (panel) row.after(panel.element);
    // the conversation goes on with the role's answer (the second)
    state.messages.push({ role: "assistant", content: response.choices[response.choices.length - 1].message.content || "" });
    state.conversationId = response.id;
  } catch (error) {
    if (error.name !== "AbortError") { fail(error); row.append(h("div", { class: "error" }, error.message)); }
    state.messages.pop();
  }
  loadConversations();
}
