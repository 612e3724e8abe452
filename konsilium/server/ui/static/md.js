// A small Markdown renderer that builds DOM nodes, never HTML strings: notes and model output are untrusted, so
// every character of them ends up as text. Blocks: fenced code, headings, lists, quotes (Obsidian's `> [!type] Title`
// callouts as labelled boxes, folded by `-`, foldable by `+`), rules, paragraphs.
// Tables (GFM pipes). Inline: `code`, **bold**, *em*, [text](http(s), mailto and obsidian links only), [[wikilinks]], footnote marks [^n].

const SAFE_URL = /^(https?:|mailto:|obsidian:)/i;
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^\n]+?)\*\*|__([^\n]+?)__|\*([^*\s][^*]*)\*|_([^_\s][^_]*)_|\[\[([^\]\n]+)\]\]|\[\^([^\]\s]+)\]|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

const CALLOUT = /^\[!([\w-]+)\]([+-]?)[ \t]*(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

function el(tag, cls) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  return node;
}

export function inline(text, parent) {
  let last = 0;
  const pattern = new RegExp(INLINE.source, "g"); // its own position: inline() recurses into **bold** and links
  for (let m; (m = pattern.exec(text));) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    last = pattern.lastIndex;
    let node;
    if (m[1]) { node = el("code"); node.textContent = m[2]; }
    else if (m[3] || m[4]) { node = el("strong"); inline(m[3] || m[4], node); }
    else if (m[5] || m[6]) { node = el("em"); inline(m[5] || m[6], node); }
    else if (m[7]) {
      node = el("span", "wikilink");
      const [target, alias] = m[7].split("|");
      node.textContent = alias || target;
      node.title = target;
      node.dataset.target = target;
    } else if (m[8]) { node = el("sup", "fnref"); node.textContent = `[${m[8]}]`; }
    else if (m[9]) {
      if (SAFE_URL.test(m[10])) {
        node = el("a");
        node.href = m[10];
        node.rel = "noopener noreferrer";
        node.target = "_blank";
        inline(m[9], node);
      } else node = document.createTextNode(m[0]);
    }
    parent.append(node);
  }
  if (last < text.length) parent.append(text.slice(last));
  return parent;
}

// A quote's lines (without their `>`): a blockquote, or a callout box when its first line is `[!type] Title`.
function quote(lines) {
  const callout = lines[0].match(CALLOUT);
  if (!callout) return render(lines.join("\n"), el("blockquote"));
  const [, type, fold, title] = callout;
  const box = el(fold ? "details" : "div", "callout");
  box.dataset.callout = type.toLowerCase(); // Obsidian's types are case-insensitive
  if (fold === "+") box.open = true;
  const head = el(fold ? "summary" : "div", "callout-title");
  const label = el("span", "callout-type");
  label.textContent = type.toLowerCase();
  head.append(label);
  if (title.trim()) head.append(" ", inline(title.trim(), el("span", "callout-name")));
  box.append(head);
  const body = lines.slice(1).join("\n");
  if (body.trim()) box.append(render(body, el("div", "callout-body")));
  return box;
}

export function render(markdown, root = el("div")) {
  const lines = String(markdown || "").replace(/\r\n?/g, "\n").replace(/<!--[\s\S]*?-->/g, "").split("\n");
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) root.append(inline(para.join("\n"), el("p")));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```+|~~~+)\s*([\w+-]*)/);
    if (fence) {
      flush();
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      const pre = el("pre");
      const code = el("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      root.append(pre);
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      root.append(inline(heading[2], el(`h${Math.min(6, heading[1].length + 2)}`)));
      i++;
      continue;
    }
    if (/^\s*\|/.test(line) && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      flush();
      const table = el("table");
      const head = el("tr");
      cells(line).forEach((cell) => head.append(inline(cell, el("th"))));
      table.append(head);
      i += 2;
      while (i < lines.length && /^\s*\|/.test(lines[i])) {
        const tr = el("tr");
        cells(lines[i++]).forEach((cell) => tr.append(inline(cell, el("td"))));
        table.append(tr);
      }
      root.append(table);
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); root.append(el("hr")); i++; continue; }
    const item = line.match(/^(\s*)([-*+]|\d+[.)])\s+(.*)$/);
    if (item) {
      flush();
      const list = el(/\d/.test(item[2]) ? "ol" : "ul");
      while (i < lines.length) {
        const next = lines[i].match(/^(\s*)([-*+]|\d+[.)])\s+(.*)$/);
        if (!next) {
          if (lines[i].trim() && /^\s{2,}/.test(lines[i]) && list.lastChild) {
            list.lastChild.append(" ", ...inline(lines[i].trim(), el("span")).childNodes);
            i++;
            continue;
          }
          break;
        }
        list.append(inline(next[3], el("li")));
        i++;
      }
      root.append(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      root.append(quote(quoted));
      continue;
    }
    if (!line.trim()) { flush(); i++; continue; }
    para.push(line);
    i++;
  }
  flush();
  return root;
}
