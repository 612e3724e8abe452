// Wikilinks in an answer: `[[Note]]`, `[[Note|alias]]`, `[[folder/Note#Heading]]` open that note's preview. A link to
// one of the answer's sources opens that source's preview; any other is looked up in the index by name, as Obsidian
// resolves it (`/v1/ui/notes/resolve`: one request per distinct link and page), and stays text, marked as unresolved,
// only when no note has that name.
import { api, h, t } from "./core.js";

const UNLINKABLE = /[#|^[\]]/g; // what a link target cannot hold: the server's Sources line writes spaces instead
const lookups = new Map(); // link key -> Promise of the note's vault path (null: no such note)

// Obsidian resolves a link by path or by file name, case-insensitively, with or without `.md`.
function key(name) {
  return String(name || "").trim().replace(/\\/g, "/").toLowerCase().replace(/\.md$/, "");
}

function words(text) {
  return String(text || "").replace(UNLINKABLE, " ").replace(/\s+/g, " ").trim().toLowerCase();
}

// A link target's note and heading ("" for none); a block reference (`#^id`) points at no heading.
export function parseTarget(target) {
  const [note, ...rest] = String(target || "").replace(/\\$/, "").split("#"); // `[[a\|b]]`: a table's escaped pipe
  const heading = rest.join("#").trim();
  return { note: note.trim(), heading: heading.startsWith("^") ? "" : heading };
}

// The source note (its vault path) a link names, or null.
export function resolveNote(name, sources) {
  const wanted = key(name);
  if (!wanted) return null;
  for (const source of sources || []) {
    const path = key(source.note);
    const file = path.split("/").pop();
    if ([path, file, words(file), key(source.title)].includes(wanted)) return source.note;
  }
  return null;
}

// The vault path of the note a link names anywhere in the index (null: none), asked once per page.
export function lookupNote(name) {
  const wanted = key(name);
  if (!lookups.has(wanted)) {
    const found = api(`/v1/ui/notes/resolve?${new URLSearchParams({ link: name })}`);
    lookups.set(wanted, found.then((answer) => answer.note, () => null));
  }
  return lookups.get(wanted);
}

function makeLink(span, note, heading, open) {
  const link = h("a", { class: "wikilink", href: "#", title: span.title, dataset: { note, heading } }, ...span.childNodes);
  link.addEventListener("click", (event) => { event.preventDefault(); open(note, heading); });
  span.replaceWith(link);
}

function markUnresolved(span, note) {
  span.classList.remove("resolving");
  span.classList.add("unresolved");
  span.title = t("chat.unresolved", note);
}

// Each `span.wikilink` under `root` becomes a link calling `open(note, heading)`, or is marked unresolved.
export function linkNotes(root, sources, open) {
  for (const span of root.querySelectorAll("span.wikilink")) {
    const { note, heading } = parseTarget(span.dataset.target);
    const found = resolveNote(note, sources);
    if (found) makeLink(span, found, heading, open);
    else if (!key(note)) markUnresolved(span, note);
    else {
      span.classList.add("resolving");
      lookupNote(note).then((path) => (path ? makeLink(span, path, heading, open) : markUnresolved(span, note)));
    }
  }
}

// The heading element of a rendered note that a link's `#Heading` names (null: none).
export function findHeading(root, heading) {
  const wanted = words(heading);
  if (!wanted) return null;
  return [...root.querySelectorAll("h1, h2, h3, h4, h5, h6")].find((el) => words(el.textContent) === wanted) || null;
}
