"""The web UI in a real headless Chromium against a real server: a question streamed with its sources (an Obsidian
link to a note that exists, a preview), switching role and dual answers, stop, continuing a conversation from the
log (every answer with its own reasoning and sources), the model's reasoning folded above its answer (streamed and
from the log), a wikilink in an answer opening the note's preview (a source's, or any note of the index found by
its name), Obsidian callouts as boxes, forgetting a memory after the confirmation, loading and pinning an adapter,
the vault's index and search playground, the planner, and the login form when the server needs an API key.

The server is the real app on uvicorn with a real index (three sample notes), log, memory store, role registry and
PEFT adapter folders; the generator is the fake slots engine (tests/fake_engine.py), whose answer names the adapter
it ran on. Screenshots of each page at 1280x800 go to tests/.artifacts/screenshots (or $KONSILIUM_SCREENSHOTS)."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import httpx2 as httpx
import pytest
import yaml
from browser import available, chromium, new_page, screenshot
from fake_engine import FakeSlotsEngine
from live_server import running_server, wait_for
from roles.adapters import make_adapter  # tests/roles/adapters.py: real PEFT folders in milliseconds
from tiny_models import tiny_llama

from konsilium.config import MemorySettings, open_home
from konsilium.grounding import Knowledge
from konsilium.memory import ConversationLog
from konsilium.memory.service import MemoryService
from konsilium.pipeline import TurnPipeline
from konsilium.roles.registry import RoleRegistry
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app
from konsilium.server.settings import ServerSettings

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

QUESTION = "Какая видеокарта нужна под локальную модель?"
PLAN_CONFIG = Path(__file__).parents[1] / "plan" / "fixtures" / "qwen3-30b-a3b-config.json"
KEY = "s3cret-key"


def write_config(home: Path, adapters: dict) -> None:
    config = {
        "adapter_cache": {"max_loaded": 3, "runtime_loading": True, "runtime_folders": [str(adapters["extra"].parent)]},
        "adapters": {"sport": {"path": str(adapters["sport"])}},
        "roles": {
            "coach": {
                "description": "Sports training plans and recovery",
                "adapters": {"sport": 1.0},
                "label": "alternative",
                "disclaimer": "A training philosophy, not medical advice.",
                "retrieval": {"folders": ["steps"]},
            },
            "tutor": {"description": "A patient tutor", "system_prompt": "Answer briefly."},
            "friend": {"description": "Small talk, without the notes", "retrieval": {"enabled": False}},
        },
    }
    (home / "konsilium.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def served(indexed_steps, tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    home_dir = Path(shutil.copytree(indexed_steps.home, root / "home"))  # the index is re-run by a test: a copy
    model = tiny_llama()
    adapters = {
        "sport": make_adapter(model, root / "adapters" / "sport", rank=8, seed=1, scale=0.3),
        "extra": make_adapter(model, root / "runtime" / "extra", rank=4, seed=3, scale=0.3),
    }
    write_config(home_dir, adapters)
    home = open_home(home_dir)
    knowledge = Knowledge(home)
    log = ConversationLog(root / "log.sqlite3")
    memory = MemoryService(log, MemorySettings(), embedder=knowledge.embedder())  # one embedder loaded, not two
    memory.add("У меня RTX 4090 с 24 ГБ", pinned=True)  # a pinned memory goes with every question
    engine = FakeSlotsEngine(context_length=8192)
    roles = RoleService(
        engine, RoleRegistry.open(home), cache_settings=home.config.adapter_cache, embed=knowledge.embedder().embed
    )
    pipeline = TurnPipeline(engine, roles, knowledge, log, memory=memory)
    with running_server(create_app(engine, pipeline=pipeline)) as url, chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(15_000)
        yield SimpleNamespace(
            url=url, page=page, browser=browser, engine=engine, vault=indexed_steps.vault, log=log, adapters=adapters
        )
        page.close()


def ask(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def asked_over_http(served, model: str, question: str) -> None:
    """What an earlier test leaves behind, for a test that pytest-xdist ran on a worker of its own."""
    body = {"model": model, "messages": [{"role": "user", "content": question}]}
    httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=60).raise_for_status()


def last_answer(page):
    return page.locator(".msg.assistant").last


def test_a_question_streams_its_answer_with_sources_that_open_in_obsidian(served):
    page = served.page
    page.goto(f"{served.url}/#/chat")
    ask(page, QUESTION)
    answer = last_answer(page)
    answer.locator(".answer", has_text="notes=").wait_for()
    page.wait_for_selector(".msg.assistant:not([data-streaming])")
    assert "[base] notes=" in answer.locator(".answer").inner_text()
    link = answer.locator(".source a.obsidian").first
    link.wait_for()
    href = link.get_attribute("href")
    parsed = urllib.parse.urlparse(href)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.scheme == "obsidian" and query["vault"] == [served.vault.name]
    assert (served.vault / query["file"][0]).is_file()  # the link opens a note that exists
    assert answer.locator(".source .passage").first.inner_text().strip()  # the passage the answer was given
    assert "RTX 4090" in answer.locator("details.memories").text_content()  # the memories it used (folded)
    answer.locator(".preview-toggle").first.click()
    assert answer.locator(".preview").first.inner_text().strip()
    screenshot(page, "chat")


def test_the_role_picker_switches_who_answers_and_dual_shows_both(served):
    page, engine = served.page, served.engine
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    page.select_option("#model", "coach")
    ask(page, "How should I train for a marathon?")
    page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('notes=')")
    assert last_answer(page).locator(".who").inner_text().startswith("coach")
    assert engine.last.adapter is not None  # the role's adapter answered
    page.check("#dual")
    ask(page, "And recovery?")
    page.wait_for_selector(".duo .msg.assistant >> nth=1")
    whos = page.locator(".duo .msg.assistant .who").all_inner_texts()
    assert whos[0] == "base model" and whos[1].startswith("coach")
    page.uncheck("#dual")
    page.select_option("#model", "auto")
    ask(page, "Как тренироваться перед марафоном?")
    page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('марафоном')")
    assert last_answer(page).locator(".who").inner_text().startswith("auto chose ")  # and whom it chose
    page.select_option("#model", "konsilium")


def test_markup_in_an_answer_is_shown_as_text_and_markdown_is_rendered(served):
    page = served.page
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    ask(page, "<img src=x onerror=alert(1)> **bold** `code`")  # the fake engine says the question back
    answer = last_answer(page).locator(".answer")
    answer.locator("strong", has_text="bold").wait_for()
    assert answer.locator("img").count() == 0 and "<img src=x onerror=alert(1)>" in answer.inner_text()
    assert answer.locator("code", has_text="code").count() == 1
    rendered = page.evaluate(
        """async () => {
          const { render } = await import('/ui/md.js');
          const root = render('[x](javascript:alert(1)) [ok](https://example.org) <script>alert(1)</script>\\n\\n'
            + '| a | b |\\n|---|---|\\n| **1** | 2 |\\n\\n```\\n<b>code</b>\\n```');
          return { html: root.innerHTML, links: [...root.querySelectorAll('a')].map((a) => a.href) };
        }"""
    )
    assert rendered["links"] == ["https://example.org/"]  # a javascript: link stays text
    assert "<script>" not in rendered["html"] and "&lt;script&gt;" in rendered["html"]
    assert "<td><strong>1</strong></td>" in rendered["html"] and "&lt;b&gt;code&lt;/b&gt;" in rendered["html"]


def test_stop_ends_the_answer_and_the_engine_stream(served):
    page, engine = served.page, served.engine
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    engine.chunk_delay_s, engine.filler_words = 0.02, 400  # 8 s of answer unless it is stopped
    closed = engine.streams_closed_early
    try:
        ask(page, "Tell me everything")
        last_answer(page).locator(".answer", has_text="w3").wait_for()
        page.keyboard.press("Escape")
        last_answer(page).locator(".stopped").wait_for()
        assert wait_for(lambda: engine.streams_closed_early > closed, 5)  # the engine was stopped, not run out
    finally:
        engine.chunk_delay_s, engine.filler_words = 0.0, 0
    assert page.locator("#send").is_visible()
    assert wait_for(lambda: served.log.list(limit=1)[0].status == "cancelled")


def test_an_old_conversation_is_listed_found_and_continued(served):
    page, engine = served.page, served.engine
    if not served.log.count("видеокарта"):  # the first test asked it on another pytest-xdist worker
        asked_over_http(served, "konsilium", QUESTION)
    page.goto(f"{served.url}/#/chat")
    page.fill("#conv-search", "видеокарта")
    page.wait_for_selector("#conversations[data-search='видеокарта'] button[data-id]")
    items = page.locator("#conversations button[data-id]")
    assert items.count() == 1 and "видеокарта" in items.first.inner_text()
    items.first.click()
    page.wait_for_selector(".msg.user:has-text('видеокарта')")
    ask(page, "А сколько памяти?")
    page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('сколько')")
    sent = [m["role"] for m in engine.last.messages if m["role"] != "system"]
    assert sent == ["user", "assistant", "user"]  # the old turn went with the new question
    latest = served.log.list(limit=1)[0].id
    page.wait_for_selector(f"#conversations button[data-id='{latest}']")
    assert items.count() == 1  # the conversation is listed once, at its latest turn
    page.fill("#conv-search", "")


THOUGHTS = "The user asks about <b>cards</b>; the notes say 24 GB."


def test_the_reasoning_is_shown_folded_above_the_answer_and_again_from_the_log(served):
    page, engine = served.page, served.engine
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    engine.thoughts = THOUGHTS
    try:
        ask(page, "Which card fits best?")
        page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('fits best')")
    finally:
        engine.thoughts = ""
    answer = last_answer(page)
    thinking = answer.locator("details.thinking")
    assert thinking.get_attribute("open") is None and not thinking.locator(".thought").is_visible()  # folded
    assert thinking.locator("summary").inner_text() == "Thinking"
    assert thinking.locator(".thought").text_content() == THOUGHTS and thinking.locator("b").count() == 0  # as text
    assert "24 GB" not in answer.locator(".answer").inner_text()  # not part of the answer
    assert answer.evaluate("box => box.querySelector('.thinking').nextElementSibling.className") == "answer"
    thinking.locator("summary").click()
    assert thinking.locator(".thought").is_visible()
    screenshot(page, "chat-thinking")
    latest = served.log.list(limit=1)[0]
    assert latest.reasoning == THOUGHTS
    page.click("#new-chat")
    page.click(f"#conversations button[data-id='{latest.id}']")
    loaded = last_answer(page).locator("details.thinking .thought")
    loaded.wait_for(state="attached")
    assert loaded.text_content() == THOUGHTS and not loaded.is_visible()  # the log's answer, folded again


def test_a_logged_conversation_shows_every_answers_reasoning_and_its_own_sources(served):
    page, engine = served.page, served.engine
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    turns = [
        ("Compare [[25_под_мою_видеокарта_как|my card note]] for the first VRAM question", "First thoughts."),
        ("Then [[08_поищи_это_про_n8n|the n8n note]] for the second question", "Second thoughts."),
    ]
    try:
        for question, thoughts in turns:
            engine.thoughts = thoughts
            ask(page, question)
            page.wait_for_selector(f".msg.assistant:not([data-streaming]) .answer:has-text('{question[-15:]}')")
    finally:
        engine.thoughts = ""
    first, latest = served.log.list(limit=2)[::-1]
    assert (first.reasoning, latest.reasoning) == ("First thoughts.", "Second thoughts.")
    page.click("#new-chat")
    page.click(f"#conversations button[data-id='{latest.id}']")
    page.wait_for_selector(".msg.user:has-text('second question')")
    answers = page.locator(".msg.assistant")
    assert answers.count() == 2
    for answer, exchange in zip((answers.nth(0), answers.nth(1)), (first, latest), strict=True):
        thought = answer.locator("details.thinking .thought")
        assert thought.text_content() == exchange.reasoning and not thought.is_visible()  # folded, as when asked
        shown = answer.locator(".source").evaluate_all("items => items.map((item) => item.dataset.note)")
        assert shown == [source["note"] for source in exchange.sources]  # its own sources, not the last answer's
    earlier = answers.nth(0)
    earlier.locator(".who").scroll_into_view_if_needed()
    screenshot(page, "chat-logged-conversation")
    earlier.locator(".answer a.wikilink", has_text="my card note").click()
    preview = earlier.locator(".source[data-note='steps/25_под_мою_видеокарта_как.md'] .preview").first
    preview.wait_for()  # the earlier answer's own source preview
    assert "Под мою видеокарта" in preview.inner_text()
    made_up = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Never said"}]
    asked = httpx.post(
        f"{served.url}/v1/chat/completions",
        json={"model": "konsilium", "messages": [*made_up, {"role": "user", "content": "And?"}]},
        timeout=60,
    ).json()
    logged = httpx.get(f"{served.url}/v1/ui/conversations/{asked['id']}").json()
    assert logged["answers"] == [None]  # an answer a client made up was never logged: nothing to show of it


def test_a_wikilink_in_an_answer_opens_the_notes_preview(served):
    page = served.page
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    ask(page, "Compare [[25_под_мою_видеокарта_как|my card note]] with [[Nowhere at all]] for VRAM")  # said back
    page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('my card note')")
    answer = last_answer(page)
    unknown = answer.locator(".answer .wikilink.unresolved", has_text="Nowhere at all")
    assert unknown.evaluate("node => node.tagName") == "SPAN" and unknown.locator("a").count() == 0  # plain text
    assert answer.locator(".source .preview:visible").count() == 0
    answer.locator(".answer a.wikilink", has_text="my card note").click()
    preview = answer.locator(".source[data-note='steps/25_под_мою_видеокарта_как.md'] .preview").first
    preview.wait_for()
    assert "Под мою видеокарта" in preview.inner_text()  # the note itself, as its Preview button shows it
    # The Sources line's footnotes link to a heading inside the note: still that note's preview.
    footnote = answer.locator(".answer a.wikilink[data-heading]:not([data-heading=''])").first
    assert footnote.get_attribute("data-note") == "steps/25_под_мою_видеокарта_как.md"
    screenshot(page, "chat-wikilink")


def test_a_wikilink_to_a_note_that_is_not_a_source_is_found_by_name_and_opens_its_preview(served):
    page = served.page
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    page.select_option("#model", "friend")  # answers without the notes: no sources
    lookups = []

    def seen(request):
        if "/v1/ui/notes/resolve" in request.url:
            lookups.append(request.url)

    page.on("request", seen)
    try:
        link = "[[27_КОНТЕКСТ_беседы_самой_какой#Что такое|the context note]]"  # said back by the fake engine
        ask(page, f"Did {link} say [[No such note here]]? [[27_контекст_беседы_самой_какой]]")
        page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('the context note')")
    finally:
        page.select_option("#model", "konsilium")
    answer = last_answer(page)
    answer.locator(".answer .wikilink.unresolved", has_text="No such note here").wait_for()  # both looked up
    page.remove_listener("request", seen)
    assert answer.locator(".source").count() == 0
    link = answer.locator(".answer a.wikilink", has_text="the context note")
    assert link.get_attribute("data-note") == "steps/27_контекст_беседы_самой_какой.md"  # by file name, any case
    link.click()
    linked = answer.locator("details.linked[data-note='steps/27_контекст_беседы_самой_какой.md']")
    linked.locator(".preview", has_text="Контекст беседы самой какой").wait_for()  # the note itself
    assert linked.locator("a.obsidian").get_attribute("href").startswith("obsidian://open?vault=")
    assert "27_контекст_беседы_самой_какой" in linked.locator("summary").inner_text()
    assert len(lookups) == 2  # one request per distinct link (any case) and page, however often it repaints
    screenshot(page, "chat-linked-note")


def test_obsidian_callouts_render_as_labelled_boxes(served):
    page = served.page
    page.goto(f"{served.url}/#/chat")
    page.click("#new-chat")
    ask(page, "How much VRAM for a longer context?")
    page.wait_for_selector(".msg.assistant:not([data-streaming]) .answer:has-text('longer context')")
    source = last_answer(page).locator(".source").first
    source.locator(".preview-toggle").click()
    # Every sample note opens with `>[!nexus_user] **User** - <date>`: a box labelled with its type and title.
    callout = source.locator(".preview .callout[data-callout='nexus_user']")
    callout.wait_for()
    assert callout.locator(".callout-type").inner_text().lower() == "nexus_user"
    assert callout.locator(".callout-name strong").inner_text() == "User"
    assert "[!nexus_user]" not in source.locator(".preview").inner_text() and callout.locator(".callout-body").count()
    screenshot(page, "chat-callout")
    boxes = page.evaluate(
        """async () => {
          const { render } = await import('/ui/md.js');
          const root = render('> [!Tip]- Folded <b>x</b>\\n> hidden **body**\\n\\n> [!warning]+ Open\\n> shown\\n\\n'
            + '> [!note]\\n> no title\\n\\n> just a quote');
          return [...root.children].map((box) => ({
            tag: box.tagName, type: box.dataset.callout || null, open: box.open ?? null,
            title: box.querySelector('.callout-name')?.textContent ?? null, html: box.innerHTML }));
        }"""
    )
    folded, opened, untitled, plain = boxes
    assert (folded["tag"], folded["type"], folded["open"]) == ("DETAILS", "tip", False)  # `-`: folded shut
    assert folded["title"] == "Folded <b>x</b>" and "&lt;b&gt;" in folded["html"]  # the title stays text
    assert "<strong>body</strong>" in folded["html"]
    assert (opened["tag"], opened["type"], opened["open"]) == ("DETAILS", "warning", True)  # `+`: foldable, open
    assert (untitled["tag"], untitled["type"], untitled["title"]) == ("DIV", "note", None)  # no marker: no folding
    assert plain["tag"] == "BLOCKQUOTE" and plain["type"] is None


def test_a_memory_is_forgotten_after_the_confirmation(served):
    page = served.page
    with httpx.Client(base_url=served.url) as client:
        memory = client.post("/v1/memories", json={"text": "My GPU is an RTX 4090"}).json()
    page.goto(f"{served.url}/#/memory")
    row = page.locator(f"tr[data-id='{memory['id']}']")
    row.wait_for()
    row.locator("button", has_text="History").click()
    row.locator(".history li", has_text="add").wait_for()
    screenshot(page, "memory")
    row.locator("button.forget").click()
    page.locator("#confirm[open]").wait_for()
    page.click("#confirm-yes")
    row.wait_for(state="detached")
    with httpx.Client(base_url=served.url) as client:
        assert client.get(f"/v1/memories/{memory['id']}").json()["status"] == "forgotten"


def test_an_adapter_is_loaded_and_pinned_from_the_council_page(served):
    page = served.page
    asked_over_http(served, "coach", "How should I train?")  # its adapter is on the GPU, whichever tests ran here
    page.goto(f"{served.url}/#/council")
    page.wait_for_selector("#roles tr[data-role='coach']")
    assert "sport × 1" in page.locator("#roles tr[data-role='coach']").inner_text()
    page.fill("#lora-name", "extra")
    page.fill("#lora-path", str(served.adapters["extra"]))
    page.click("#load-form button[type=submit]")
    page.wait_for_selector("tr[data-adapter='extra'] .unload")
    assert page.locator("#adapter-fit").inner_text().startswith("On the GPU: 2 of 3 slots")
    page.locator("tr[data-adapter='sport'] .pin").click()
    page.wait_for_selector("tr[data-adapter='sport'] .tier .pinned")
    with httpx.Client(base_url=served.url) as client:
        adapters = {a["name"]: a for a in client.get("/v1/adapters").json()["data"]}
        assert adapters["extra"]["runtime"] and adapters["sport"]["pinned"]
        assert "extra" in [m["id"] for m in client.get("/v1/models").json()["data"]]
    screenshot(page, "council")


def test_the_vault_page_reindexes_with_progress_and_compares_search_modes(served):
    page = served.page
    page.goto(f"{served.url}/#/vault")
    page.wait_for_selector("tr[data-collection] .notes:has-text('3')")
    page.click("button.reindex")
    page.wait_for_selector("#index-job .ok")  # the run's report: 3 notes, unchanged
    assert "3" in page.locator("#index-job .ok").inner_text()
    page.fill("#playground-query", "видеокарта")
    page.press("#playground-query", "Enter")
    for mode in ("bm25", "dense", "hybrid"):
        page.wait_for_selector(f"#playground [data-mode='{mode}'] .hit")
    screenshot(page, "vault")


def test_the_plan_page_plans_and_explains_a_posted_config(served):
    page = served.page
    page.goto(f"{served.url}/#/plan")
    page.fill("#plan-config", PLAN_CONFIG.read_text(encoding="utf-8"))
    page.check("#plan-compare")
    page.click("#plan-config ~ button[type=submit], form button[type=submit]")
    page.wait_for_selector("#plan-table")
    header = page.locator("#plan-table thead th").all_inner_texts()
    assert len(header) == 3  # the two settings side by side
    assert "qwen3_moe" in page.locator("#plan-table").inner_text()
    assert page.locator("#plan-explain code", has_text="num_experts").count() >= 1
    screenshot(page, "plan")


def test_the_ui_endpoints_refuse_what_they_cannot_serve(served):
    with httpx.Client(base_url=served.url) as client:
        page = client.get("/")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
        for note in ("../../../etc/passwd", "steps/missing.md"):
            missing = client.get("/v1/ui/note", params={"note": note})
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "note_not_found"
        bad = client.post("/v1/ui/plan", json={"config": {"hidden_size": 8}})
        assert bad.status_code == 400 and bad.json()["error"]["message"]
        unknown = client.post("/v1/ui/search", json={"query": "x", "collection": "nope"})
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]


def test_a_server_with_an_api_key_asks_for_it_once(served, indexed_steps):
    engine = FakeSlotsEngine()
    app = create_app(engine, settings=ServerSettings(api_keys=(KEY,)))
    with running_server(app) as url:
        assert httpx.get(f"{url}/").status_code == 200  # the page itself needs no key
        assert httpx.get(f"{url}/v1/ui/info").status_code == 401
        page = new_page(served.browser, locale="ru-RU")
        try:
            page.goto(f"{url}/#/chat")
            page.locator("#login[open]").wait_for()
            assert page.locator("#login h2").inner_text() == "API-ключ"  # Russian labels for a Russian browser
            page.fill("#login-key", "wrong")
            page.press("#login-key", "Enter")
            page.locator("#login-error", has_text="ключ").wait_for()
            page.fill("#login-key", KEY)
            page.press("#login-key", "Enter")
            page.wait_for_selector("#model option[value='konsilium']", state="attached")
            ask(page, "Привет")
            page.wait_for_selector(".msg.assistant .answer:has-text('Привет')")
            assert json.loads(page.evaluate("JSON.stringify(sessionStorage)"))["konsilium.key"] == KEY
        finally:
            page.close()
