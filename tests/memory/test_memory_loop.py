"""The memory loop through a real server and the official client: what the user says comes back in later
answers (`memories` beside `sources`, in the prompt), updated facts replace old ones, "forget" and
DELETE /v1/memories remove them, and `konsilium.memory: false` keeps an exchange out of memory."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server, wait_for

from konsilium.config import MemorySettings
from konsilium.memory import ConversationLog
from konsilium.memory.service import MemoryService
from konsilium.pipeline import TurnPipeline
from konsilium.roles.runtime import RoleService
from konsilium.server import create_app


@pytest.fixture(scope="module")
def embedder():
    from konsilium.index.embedder import UniversalSentenceEncoderEmbedder

    return UniversalSentenceEncoderEmbedder()


@pytest.fixture
def served(tmp_path, embedder):
    engine = FakeEngine(context_length=4096)
    log = ConversationLog(tmp_path / "conversations.sqlite3")
    memory = MemoryService(log, MemorySettings(), embedder=embedder)
    pipeline = TurnPipeline(engine, RoleService(engine, base_model_id="konsilium"), None, log, memory=memory)
    with running_server(create_app(engine, pipeline=pipeline)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        yield client, engine, memory, url
    log.close()


def say(client, text, **extra):
    return client.chat.completions.create(
        model="konsilium", messages=[{"role": "user", "content": text}], extra_body=extra or None
    )


def learned(memory, count):
    """Wait until the background extractor has read every logged exchange and `count` memories are current."""
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == count, 20)


def test_a_fact_told_in_chat_comes_back_in_a_later_answer_in_another_language(served):
    client, engine, memory, _ = served
    first = say(client, "My cat is called Zorblax.")
    assert "memories" not in first.model_extra or not first.model_extra["memories"]
    learned(memory, 1)
    answer = say(client, "Как зовут мою кошку?")
    used = answer.model_extra["memories"]
    assert [m["text"] for m in used] == ["My cat is called Zorblax"] and used[0]["id"].startswith("mem-")
    system = engine.last.messages[0]["content"]
    assert "<memory" in system and "Zorblax" in system  # the model saw it, in the system message
    stored = memory.store.log.get(answer.id)
    assert stored.memories == [used[0]["id"]]  # the log says which memories the answer used


def test_a_newer_statement_replaces_the_old_one_and_only_the_current_comes_back(served):
    client, _, memory, _ = served
    say(client, "I work as a biology teacher in Tver.")
    learned(memory, 1)
    say(client, "Я сменила работу: теперь я методист в школе онлайн-образования.")
    learned(memory, 1)
    texts = [m["text"] for m in say(client, "Where do I work now?").model_extra["memories"]]
    assert any("методист" in t for t in texts) and not any("teacher" in t for t in texts)
    old = memory.store.list("superseded")[0]
    assert [e.event for e in memory.store.history(old.id)][:2] == ["ADD", "UPDATE"]


def test_forget_in_chat_removes_the_memory_for_good(served):
    client, _, memory, _ = served
    say(client, "Я учу испанский.")
    learned(memory, 1)
    say(client, "Забудь, что я учу испанский.")
    learned(memory, 0)
    answer = say(client, "Какой язык я учу?")
    assert not (answer.model_extra.get("memories") or [])
    memory.store.reset_cursor()  # read the whole log again: the forgotten fact stays forgotten
    memory.catch_up()
    assert memory.store.count() == 0


def test_an_exchange_that_opts_out_is_neither_given_memories_nor_learned_from(served):
    client, engine, memory, _ = served
    memory.add("My name is Lena", kind="identity", pinned=True)
    answer = say(client, "I live in Kazan.", konsilium={"memory": False})
    assert not answer.model_extra.get("memories") and "<memory" not in engine.last.messages[0]["content"]
    assert wait_for(lambda: memory.store.pending() == 0, 20)
    assert [m.text for m in memory.store.list()] == ["My name is Lena"]
    with pytest.raises(openai.BadRequestError, match="konsilium.memory must be true or false"):
        say(client, "hi", konsilium={"memory": "no"})


def test_the_memories_api_lists_searches_edits_pins_and_forgets(served):
    _, _, memory, url = served
    with httpx.Client(base_url=f"{url}/v1", timeout=30) as http:
        created = http.post("/memories", json={"text": "My sister Ira lives in Minsk", "about": "sister Ira"}).json()
        assert created["about"] == "sister Ira" and created["status"] == "current"
        http.post("/memories", json={"text": "I drive a red Skoda"})
        listed = http.get("/memories").json()
        assert listed["total"] == 2 and {m["text"] for m in listed["data"]} >= {"I drive a red Skoda"}
        found = http.post("/memories/search", json={"query": "Где живёт моя сестра?", "k": 1}).json()["data"]
        assert found[0]["id"] == created["id"]
        patched = http.patch(
            f"/memories/{created['id']}", json={"text": "My sister Ira lives in Warsaw", "pinned": True}
        )
        assert patched.json()["text"] == "My sister Ira lives in Warsaw" and patched.json()["pinned"] is True
        events = [e["event"] for e in http.get(f"/memories/{created['id']}/history").json()["data"]]
        assert events == ["ADD", "EDIT", "PIN"]
        deleted = http.delete(f"/memories/{created['id']}").json()
        assert deleted == {
            "id": created["id"],
            "object": "memory.deleted",
            "deleted": True,
            "forgotten": [created["id"]],
        }
        gone = http.get(f"/memories/{created['id']}").json()
        assert gone["status"] == "forgotten" and gone["text"] == ""
        assert http.get("/memories/mem-000000000000").status_code == 404
        bad = http.post("/memories", json={"text": ""})
        assert bad.status_code == 400 and "text" in bad.json()["error"]["message"]
        assert http.post("/memories", json={"text": "x", "mood": 1}).status_code == 400
    assert [m.text for m in memory.store.list()] == ["I drive a red Skoda"]


def test_a_role_whose_scope_excludes_memory_neither_sees_nor_teaches_memories(tmp_path, embedder):
    import yaml

    from konsilium.config import open_home
    from konsilium.roles.registry import RoleRegistry

    home_dir = tmp_path / "home"
    home_dir.mkdir()
    roles = {"roles": {"stranger": {"description": "Answers without knowing the user", "retrieval": {"memory": False}}}}
    (home_dir / "konsilium.yaml").write_text(yaml.safe_dump(roles), encoding="utf-8")
    engine = FakeEngine(context_length=4096)
    log = ConversationLog(tmp_path / "c.sqlite3")
    memory = MemoryService(log, MemorySettings(), embedder=embedder)
    memory.add("My name is Lena", kind="identity", pinned=True)
    service = RoleService(engine, RoleRegistry.open(open_home(home_dir)), base_model_id="konsilium")
    pipeline = TurnPipeline(engine, service, None, log, memory=memory)
    with running_server(create_app(engine, pipeline=pipeline)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        answer = client.chat.completions.create(
            model="stranger", messages=[{"role": "user", "content": "I live in Perm."}]
        )
        assert not answer.model_extra.get("memories") and "<memory" not in str(engine.last.messages)
        assert wait_for(lambda: memory.store.pending() == 0, 20)
        assert [m.text for m in memory.store.list()] == ["My name is Lena"]
        base = client.chat.completions.create(model="konsilium", messages=[{"role": "user", "content": "Hi"}])
        assert [m["text"] for m in base.model_extra["memories"]] == ["My name is Lena"]
    memory.stop()
    log.close()


def test_forgetting_can_also_blank_the_users_words_in_the_log(tmp_path, embedder):
    log = ConversationLog(tmp_path / "c.sqlite3")
    memory = MemoryService(log, MemorySettings(redact_log_on_forget=True), embedder=embedder)
    from konsilium.memory import Exchange

    log.record(
        Exchange(
            "chatcmpl-1",
            1.0,
            "chat.completions",
            "konsilium",
            None,
            [{"role": "user", "content": "I have a secret tattoo of a dragon."}],
            "Cool.",
            "stop",
            [],
        )
    )
    memory.catch_up()
    [remembered] = memory.store.list()
    memory.forget(remembered.id)
    kept = log.get("chatcmpl-1")
    assert "dragon" not in str(kept.messages) and kept.response == "Cool."
    assert log.count(search="dragon") == 0  # gone from the history search too
    log.close()


def test_past_conversations_come_back_when_relevant_but_not_the_chat_being_continued(served):
    client, engine, memory, _ = served
    from konsilium.memory import Exchange

    decision = "We agreed to use PostgreSQL instead of MongoDB for the billing service."
    question = [{"role": "user", "content": "Which database should the billing service use?"}]
    first = Exchange("chatcmpl-lastmonth", 1.7e9, "chat.completions", "konsilium", None, question, decision, "stop", [])
    memory.store.log.record(first)
    memory.catch_up()
    answer = say(client, "Что мы решили насчёт базы данных для биллинга?")
    past = [m for m in answer.model_extra["memories"] if m["kind"] == "conversation"]
    assert [m["id"] for m in past] == [first.id] and "PostgreSQL" in past[0]["text"]
    assert 'kind="conversation"' in engine.last.messages[0]["content"]
    continued = client.chat.completions.create(
        model="konsilium",
        messages=[
            *question,
            {"role": "assistant", "content": decision},
            {"role": "user", "content": "And which database for the billing reports?"},
        ],
    )  # the chat it is part of is already in the messages: not offered again
    assert first.id not in [m["id"] for m in continued.model_extra.get("memories") or []]


def test_who_the_user_is_and_how_he_wants_answers_join_the_core_profile_by_themselves(served):
    client, engine, memory, _ = served
    say(client, "Hi, I'm Lena. Отвечай мне на русском.")
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == 2, 20)
    assert {m.key for m in memory.store.list(pinned=True)} == {"name", "answer.language"}
    used = say(client, "What is the capital of France?").model_extra["memories"]  # unrelated, yet they come
    assert {m["text"] for m in used} == {"I'm Lena", "Отвечай мне на русском"} and all(m["pinned"] for m in used)


def test_forgetting_in_chat_also_deletes_the_memorys_exported_note_and_nothing_else(served, tmp_path):
    client, _, memory, _ = served
    say(client, "I play the violin.")
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == 1, 20)
    vault = tmp_path / "vault"
    (vault / "Memory").mkdir(parents=True)
    (vault / "Memory" / "my own note (mem-123456789abc).md").write_text("not konsilium's", encoding="utf-8")
    [note] = memory.export(vault / "Memory")
    assert "I play the violin" in note.read_text(encoding="utf-8")
    say(client, "Forget that I play the violin.")
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == 0, 20)
    assert [p.name for p in (vault / "Memory").iterdir()] == ["my own note (mem-123456789abc).md"]


def test_reading_the_log_again_keeps_forgotten_things_out_of_past_conversations(served):
    client, _, memory, _ = served
    say(client, "I have a dragon tattoo on my left arm.")
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == 1, 20)
    say(client, "Forget that I have a dragon tattoo.")
    assert wait_for(lambda: memory.store.pending() == 0 and memory.store.count() == 0, 20)
    memory.store.reset_cursor()  # `konsilium memory update --rebuild`
    memory.catch_up()
    assert memory.store.count() == 0
    assert memory.recall_conversations("Do I have a tattoo?") == []  # neither the telling nor the asking to forget


def test_the_api_searches_past_conversations_too(served):
    import httpx2

    client, _, memory, url = served
    say(client, "Let's keep the billing service on PostgreSQL.")
    assert wait_for(lambda: memory.store.pending() == 0, 20)
    found = httpx2.post(
        f"{url}/v1/memories/search", json={"query": "what database did we pick?", "conversations": True}
    ).json()["data"]
    assert found and found[0]["kind"] == "conversation" and "PostgreSQL" in found[0]["text"]
