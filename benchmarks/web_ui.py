"""The web UI in headless Chromium against a real server: how fast a streamed token shows, what each page weighs, and
whether a long conversation log stays responsive.

* **first token -> visible**: a fake engine stamps the wall-clock time at which it hands out each answer's first
  token; the page's MutationObserver stamps when that text is in the DOM (`performance.timeOrigin + now()`, the same
  clock). Median and p95 over `--runs` questions. Goal: under 50 ms.
* **page weight**: every byte a fresh browser downloads to show each page (HTML, CSS, ES modules), uncompressed, from
  the responses' bodies. Goal: under 200 kB per page.
* **a 2,000-conversation log**: the Chat page with 2,000 logged conversations: first list shown, a search typed ->
  the filtered list shown, every page of the list loaded ("Load more" until the end), and opening one conversation of
  2,000 messages (its last 100 are rendered, older ones on demand); with the longest main-thread task seen meanwhile
  (a task over 50 ms is one a user can feel).

    python benchmarks/web_ui.py                 # 20 runs; prints a table, writes benchmarks/results/web_ui.json
    python benchmarks/web_ui.py --runs 50 --json /tmp/web_ui.json

Needs Debian's chromium (`tests/web/install_chromium.sh`) and playwright (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests", ROOT / "tests" / "web"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.provenance import provenance  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "web_ui.json"
PAGES = ("chat", "memory", "council", "vault", "plan")
OBSERVE = """() => {
  window.__shown = [];
  const seen = new WeakSet();
  new MutationObserver(() => {
    const answer = document.querySelector('.msg.assistant:last-child .answer');
    if (answer && !seen.has(answer) && answer.textContent.trim()) {
      seen.add(answer);
      window.__shown.push(performance.timeOrigin + performance.now());
    }
  }).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
  window.__longest = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longest = Math.max(window.__longest, entry.duration);
  }).observe({type: 'longtask', buffered: false});
}"""


def stamping_engine():
    """The fake engine, with the wall-clock time of each answer's first token."""
    from fake_engine import FakeEngine, FakeStream

    class StampedStream(FakeStream):
        def __next__(self):
            first = self.sent == 0
            chunk = super().__next__()
            if first:
                self.engine.first_tokens.append(time.time() * 1000)
            return chunk

    class Stamping(FakeEngine):
        first_tokens: list[float]

        def stream_chat(self, messages, params, adapter=None, tools=None):
            return StampedStream(self, self._chat(messages, params, adapter, tools))

    engine = Stamping(context_length=100_000, filler_words=30)
    engine.first_tokens = []
    return engine


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def first_token_latency(browser, url: str, engine, runs: int) -> dict:
    from browser import new_page

    page = new_page(browser)
    page.goto(f"{url}/#/chat")
    page.wait_for_selector("#prompt")
    page.evaluate(OBSERVE)
    delays = []
    for i in range(runs + 1):  # the first one warms the page's modules and the server's paths
        page.click("#new-chat")
        page.fill("#prompt", f"question {i}")
        page.press("#prompt", "Enter")
        page.wait_for_selector(".msg.assistant:not([data-streaming])")
        shown = page.evaluate("window.__shown[window.__shown.length - 1]")
        if i:
            delays.append(shown - engine.first_tokens[-1])
    page.close()
    return {
        "runs": runs,
        "median_ms": round(statistics.median(delays), 2),
        "p95_ms": round(percentile(delays, 0.95), 2),
        "max_ms": round(max(delays), 2),
        "goal_ms": 50,
    }


def page_weights(browser, url: str) -> dict:
    weights = {}
    for name in PAGES:
        context = browser.new_context(viewport={"width": 1280, "height": 800})  # fresh: nothing cached
        page = context.new_page()
        sizes: dict[str, int] = {}

        def keep(response, sizes=sizes):
            if response.url.startswith(url) and "/v1/" not in response.url and response.ok:
                sizes[response.url.removeprefix(url)] = len(response.body())

        page.on("response", keep)
        page.goto(f"{url}/#/{name}", wait_until="networkidle")
        weights[name] = {"bytes": sum(sizes.values()), "files": len(sizes)}
        context.close()
    return weights


def fill_log(log, conversations: int, long_messages: int) -> str:
    """`conversations` one-turn exchanges, and one conversation of `long_messages` messages (its id returned)."""
    from konsilium.memory import Exchange

    start = time.time() - conversations - 10
    for i in range(conversations):
        question = f"Вопрос {i} про контекст, видеокарту и заметку номер {i}"
        log.record(
            Exchange(
                id=f"chatcmpl-bench{i:05d}",
                time=start + i,
                endpoint="chat.completions",
                model="konsilium",
                role=None,
                messages=[{"role": "user", "content": question}],
                response=f"Ответ {i}: **{i}** [[note {i}]]",
                finish_reason="stop",
                sources=[],
            )
        )
    messages = []
    for i in range(long_messages // 2 - 1):
        messages += [{"role": "user", "content": f"turn {i}"}, {"role": "assistant", "content": f"answer *{i}*"}]
    messages.append({"role": "user", "content": "the last question"})
    log.record(
        Exchange(
            id="chatcmpl-benchlong",
            time=time.time(),
            endpoint="chat.completions",
            model="konsilium",
            role=None,
            messages=messages,
            response="the last answer",
            finish_reason="stop",
            sources=[],
        )
    )
    return "chatcmpl-benchlong"


def long_log(browser, url: str, long_id: str, conversations: int, long_messages: int) -> dict:
    from browser import new_page

    page = new_page(browser)
    started = time.perf_counter()
    page.goto(f"{url}/#/chat")
    page.wait_for_selector("#conversations button[data-id]")
    first_page_ms = (time.perf_counter() - started) * 1000
    page.evaluate(OBSERVE)
    started = time.perf_counter()
    page.fill("#conv-search", "заметку номер 1999")
    page.wait_for_selector("#conversations[data-search='заметку номер 1999'] button[data-id]")
    search_ms = (time.perf_counter() - started) * 1000
    page.fill("#conv-search", "")
    page.wait_for_selector("#conversations[data-search=''] button[data-id]")
    started = time.perf_counter()
    while page.locator("#conversations + button:visible").count():
        shown = page.locator("#conversations button[data-id]").count()
        page.click("#conversations + button")
        page.locator("#conversations button[data-id]").nth(shown).wait_for(state="attached")
    all_ms = (time.perf_counter() - started) * 1000
    listed = page.locator("#conversations button[data-id]").count()
    longest_listing = page.evaluate("window.__longest")
    page.evaluate("window.__longest = 0")
    started = time.perf_counter()
    page.click(f"#conversations button[data-id='{long_id}']")
    page.wait_for_selector(".msg.assistant .answer:has-text('the last answer')")
    open_ms = (time.perf_counter() - started) * 1000
    rendered = page.locator(".msg").count()
    longest_opening = page.evaluate("window.__longest")
    page.close()
    return {
        "conversations": conversations,
        "listed": listed,
        "first_page_ms": round(first_page_ms, 1),
        "search_ms": round(search_ms, 1),
        "load_all_pages_ms": round(all_ms, 1),
        "open_long_conversation_ms": round(open_ms, 1),
        "long_conversation_messages": long_messages,
        "messages_rendered": rendered,
        "longest_task_listing_ms": round(longest_listing, 1),
        "longest_task_opening_ms": round(longest_opening, 1),
    }


def print_table(facts: dict, long_messages: int) -> None:
    latency, log, n = facts["first_token_to_visible"], facts["log"], facts["log"]["conversations"]
    rows = [
        ("first engine token -> visible, median", f"{latency['median_ms']:.1f} ms", "< 50 ms"),
        ("first engine token -> visible, p95", f"{latency['p95_ms']:.1f} ms", "< 50 ms"),
        *(
            (f"page weight: {name} ({weight['files']} files)", f"{weight['bytes']:,} B", "< 200 kB")
            for name, weight in facts["page_weight"].items()
        ),
        (f"log of {n:,}: first list shown", f"{log['first_page_ms']:.1f} ms", ""),
        (f"log of {n:,}: search typed -> filtered list", f"{log['search_ms']:.1f} ms", ""),
        (f"log of {n:,}: all {log['listed']:,} listed (Load more)", f"{log['load_all_pages_ms']:.1f} ms", ""),
        (f"open a {long_messages:,}-message conversation", f"{log['open_long_conversation_ms']:.1f} ms", ""),
        ("longest main-thread task: listing, searching", f"{log['longest_task_listing_ms']:.1f} ms", "< 50 ms"),
        ("longest main-thread task: opening it", f"{log['longest_task_opening_ms']:.1f} ms", "< 50 ms"),
    ]
    print(f"load average {facts['load_average_before'][0]:.1f} before, {facts['load_average_after'][0]:.1f} after")
    print(f"{'measure':<48}{'value':>12}  goal")
    for label, value, goal in rows:
        print(f"{label:<48}{value:>12}  {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--long-messages", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args()
    from browser import available, chromium
    from live_server import running_server

    from konsilium.memory import ConversationLog
    from konsilium.server import create_app

    if available() is not None:
        sys.exit(f"cannot run: {available()}")
    facts = {"provenance": provenance(), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as folder, chromium() as browser:
        engine = stamping_engine()
        with running_server(create_app(engine)) as url:
            facts["first_token_to_visible"] = first_token_latency(browser, url, engine, options.runs)
            facts["page_weight"] = page_weights(browser, url)
        log = ConversationLog(Path(folder) / "log.sqlite3")
        long_id = fill_log(log, options.conversations, options.long_messages)
        with running_server(create_app(stamping_engine(), conversation_log=log)) as url:
            facts["log"] = long_log(browser, url, long_id, options.conversations, options.long_messages)
    facts["load_average_after"] = os.getloadavg()  # browser, server and benchmark share these cores
    print_table(facts, options.long_messages)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in facts.items() if k != "provenance"}, ensure_ascii=False))
    print(f"wrote {options.json}")


if __name__ == "__main__":
    main()
