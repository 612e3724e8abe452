// The page shell: a hash route per page (#/chat, #/memory, ...), each page an ES module loaded when first shown.
import { h, initLogin, lang, t } from "./core.js";

const PAGES = ["chat", "memory", "council", "vault", "plan"];
let current = null;

async function show() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const page = PAGES.includes(name) ? name : "chat";
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  const main = document.getElementById("main");
  if (current && current.leave) current.leave();
  main.replaceChildren(h("p", { class: "muted" }, t("loading")));
  const module = await import(`./pages/${page}.js`);
  current = module;
  main.replaceChildren();
  document.title = `${t(`nav.${page}`)} · konsilium`;
  await module.render(main, location.hash);
}

function translateStatic() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
}

// Alt+1..5 switch pages from anywhere.
document.addEventListener("keydown", (event) => {
  if (event.altKey && event.key >= "1" && event.key <= String(PAGES.length)) {
    location.hash = `#/${PAGES[Number(event.key) - 1]}`;
    event.preventDefault();
  }
});

translateStatic();
initLogin();
window.addEventListener("hashchange", show);
show();
