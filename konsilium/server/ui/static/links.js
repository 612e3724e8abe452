// Wikilinks in an answer, resolved against the answer's sources: `[[Note]]`, `[[Note|alias]]`, `[[folder/Note#Heading]]`
// open that note's preview (the one its source's Preview button shows). A link to a note that is not among the sources
// stays text, marked as unresolved: the server looks notes up by path only, and guessing would open the wrong one.
import { h, t } from "./core.js";

const UNLINKABLE = /[#|^[\]]/g; // what a link target cannot hold: the server's Sources line writes spaces instead

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

// Each `span.wikilink` under `root` becomes a link calling `open(note, heading)`, or is marked unresolved.
export function linkNotes(root, sources, open) {
  for (const span of root.querySelectorAll("span.wikilink")) {
    const { note, heading } = parseTarget(span.dataset.target);
    const found = resolveNote(note, sources);
    if (!found) {
      span.classList.add("unresolved");
      span.title = t("chat.unresolved", note);
      continue;
    }
    const link = h("a", { class: "wikilink", href: "#", title: span.title, dataset: { note: found, heading } },
      ...span.childNodes);
    link.addEventListener("click", (event) => { event.preventDefault(); open(found, heading); });
    span.replaceWith(link);
  }
}

// The heading element of a rendered note that a link's `#Heading` names (null: none).
export function findHeading(root, heading) {
  const wanted = words(heading);
  if (!wanted) return null;
  return [...root.querySelectorAll("h1, h2, h3, h4, h5, h6")].find((el) => words(el.textContent) === wanted) || null;
}
