"""The memory store: memories kept with their history, superseded ones no longer current, forgotten ones erased
(words, stems, vector, history text) but remembered as forgotten, and changes seen by other processes."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from konsilium.config import MemorySettings
from konsilium.memory import ConversationLog
from konsilium.memory.records import Memory, Operation, new_memory_id
from konsilium.memory.service import MemoryService
from konsilium.memory.store import MemoryNotFound, MemoryStore


def said(service, text, about="user", key=None, when=None):
    now = when or time.time()
    return Memory(
        new_memory_id(), text, about=about, key=key, created=now, updated=now, vector=service.embed([text])[0]
    )


def test_added_memories_are_listed_newest_first_and_found_by_a_prefix(service):
    first = service.add("My cat is called Zorblax")
    second = service.add("I live in Kazan", kind="home", pinned=True)
    assert [m.id for m in service.store.list()] == [second.id, first.id]
    assert service.store.get(first.id[:8]).text == "My cat is called Zorblax"
    assert [m.id for m in service.store.list(pinned=True)] == [second.id]
    with pytest.raises(MemoryNotFound):
        service.store.get("mem-nope")


def test_a_search_finds_a_fact_said_in_english_when_asked_in_russian(service):
    service.add("My cat is called Zorblax")
    service.add("I work as a biology teacher in Tver", kind="work")
    service.add("Я не ем глютен", kind="health")
    hits = service.search("Как зовут мою кошку?", k=3)
    assert hits[0].memory.text == "My cat is called Zorblax"
    hits = service.search("What food must I avoid?", k=3)
    assert hits[0].memory.text == "Я не ем глютен"


def test_an_update_supersedes_the_old_memory_which_keeps_its_history(service):
    old = said(service, "My laptop has 16 GB of RAM", key="laptop.ram")
    service.store.apply([Operation("ADD", old)])
    new = said(service, "Upgraded the laptop RAM to 32 GB", key="laptop.ram")
    service.store.apply([Operation("UPDATE", new, target=old.id, reason="same subject")])
    assert [m.text for m in service.store.list()] == ["Upgraded the laptop RAM to 32 GB"]
    assert service.store.get(old.id).status == "superseded" and service.store.get(old.id).superseded_by == new.id
    events = [(e.memory_id, e.event) for e in service.store.history(new.id)]
    assert events == [(old.id, "ADD"), (old.id, "UPDATE"), (new.id, "ADD")]
    assert all("16 GB" not in hit.memory.text for hit in service.search("How much RAM does my laptop have?"))


def test_forgetting_erases_the_words_everywhere_and_takes_the_old_versions_with_it(service, tmp_path):
    old = said(service, "Я учу испанский", key="learning:language")
    service.store.apply([Operation("ADD", old)])
    new = said(service, "Я учу испанский по вторникам", key="learning:language")
    service.store.apply([Operation("UPDATE", new, target=old.id)])
    forgotten = service.forget(new.id)
    assert {m.id for m in forgotten} == {old.id, new.id}
    assert service.store.list() == [] and service.search("испанский") == []
    assert all(m.status == "forgotten" and m.text == "" for m in service.store.list(None))
    with sqlite3.connect(tmp_path / "conversations.sqlite3") as db:  # not in the file, not in the history
        dump = "\n".join(db.iterdump())
    assert "испанск" not in dump.lower()
    assert [e.event for e in service.store.history(new.id)][-1] == "DELETE"
    assert service.store.is_forgotten(said(service, "Я учу испанский").fingerprint, said_at=time.time() - 60)


def test_a_forgotten_statement_said_again_later_is_not_blocked(service):
    memory = service.add("I play the violin")
    service.forget(memory.id)
    fingerprint = said(service, "I play the violin").fingerprint
    assert service.store.is_forgotten(fingerprint, said_at=time.time() - 3600)  # the old exchange, read again
    assert not service.store.is_forgotten(fingerprint, said_at=time.time() + 1)  # said anew after forgetting


def test_pinned_memories_come_with_every_question_and_unpinned_ones_only_when_relevant(service):
    name = service.add("My name is Lena", kind="identity")
    service.store.set_pinned(name.id, True)
    service.add("My sister Ira lives in Minsk", about="sister Ira")
    recalled = service.recall("What is the capital of France?")
    assert [r.memory.id for r in recalled] == [name.id] and recalled[0].pinned
    recalled = service.recall("Where does my sister live?")
    assert [r.memory.text for r in recalled] == ["My name is Lena", "My sister Ira lives in Minsk"]


def test_edits_are_searchable_and_kept_in_history(service):
    memory = service.add("My deadline is in May")
    service.edit(memory.id, "My thesis deadline is June 30")
    assert service.search("thesis", k=1)[0].memory.text == "My thesis deadline is June 30"
    event = service.store.history(memory.id)[-1]
    assert (event.event, event.old_text, event.new_text) == (
        "EDIT",
        "My deadline is in May",
        "My thesis deadline is June 30",
    )
    with pytest.raises(ValueError, match="some text"):
        service.edit(memory.id, "   ")


def test_a_change_made_by_another_process_is_seen_by_the_next_search(service, tmp_path, embedder):
    service.add("I drive a red Skoda")
    assert service.search("car", k=1)[0].memory.text == "I drive a red Skoda"
    other_log = ConversationLog(tmp_path / "conversations.sqlite3")
    other = MemoryService(other_log, MemorySettings(), embedder=embedder)
    other.forget_matching("I drive a red Skoda")
    other_log.close()
    assert service.search("car", k=1) == []


def test_operations_and_the_cursor_commit_together_or_not_at_all(service):
    memory = said(service, "I live in Kazan")
    broken = Operation("UPDATE", said(service, "I live in Perm"), target="mem-missing")
    with pytest.raises(Exception, match="vanished"):
        service.store.apply([Operation("ADD", memory), broken], cursor=7)
    assert service.store.list() == [] and service.store.cursor() == 0


def test_the_store_needs_no_embedder_to_list(tmp_path):
    with ConversationLog(tmp_path / "c.sqlite3") as log:
        assert MemoryStore(log).list() == [] and MemoryStore(log).cursor() == 0


def current_after(service, said_by_user: list[str]) -> dict[str, str]:
    """Each text as its own exchange, learned from in turn: the current memories' texts → whom they are about."""
    from konsilium.memory import Exchange

    for i, text in enumerate(said_by_user):
        messages = [{"role": "user", "content": text}]
        exchange = Exchange(
            f"chatcmpl-{i}", 1.7e9 + i, "chat.completions", "konsilium", None, messages, "ok", "stop", []
        )
        service.store.log.record(exchange)
        service.catch_up()
    return {m.text: m.about for m in service.store.list()}


def test_a_statement_opening_with_a_known_persons_name_updates_that_person_not_the_user(service):
    current = current_after(
        service,
        [
            "I work as a biology teacher.",
            "My husband Timur is a sound engineer at the drama theatre.",
            "Мы переехали! Теперь живём в Нижнем Новгороде: Тимур теперь звукорежиссёр в оперном театре.",
        ],
    )
    assert current["Тимур теперь звукорежиссёр в оперном театре"] == "husband Timur"
    assert current["I work as a biology teacher"] == "user"  # the user's own job is untouched
    assert "My husband Timur is a sound engineer at the drama theatre" not in current  # superseded


def test_a_deadline_moved_in_another_language_replaces_the_old_one(service):
    current = current_after(
        service,
        [
            "Главный проект сейчас — конкурсная заявка на библиотеку в Елабуге, сдать нужно до 15 октября.",
            "My laptop has 16 GB of RAM.",
            "Also the Yelabuga library deadline got pushed to November 3.",
        ],
    )
    assert "Also the Yelabuga library deadline got pushed to November 3" in current
    assert not any("15 октября" in text for text in current) and "My laptop has 16 GB of RAM" in current


def test_a_change_naming_the_same_thing_replaces_it_but_a_name_alone_does_not(service):
    current = current_after(
        service,
        [
            "Ещё: по вторникам в 19:00 у меня виолончель, так что вечер вторника занят.",
            "My crewmate Jonno just games on a Steam Deck.",
            "Виолончель теперь по четвергам, в 18:30.",
            "Jonno's on nights now.",
        ],
    )
    assert "Виолончель теперь по четвергам, в 18:30" in current
    assert not any("вторникам" in text for text in current)  # the old lesson day is no longer current
    assert "My crewmate Jonno just games on a Steam Deck" in current and "Jonno's on nights now" in current


def test_a_thing_named_in_another_script_is_the_same_thing_and_unknown_people_are_no_one(service):
    current = current_after(
        service,
        [
            "Тягач — Volvo FH 2019 года, пробег уже 640 тысяч.",
            "Всё, продал Вольво. Теперь на Scania S500.",
            "She's a nurse at the regional hospital.",  # "she": nobody named before
            "The teacher changed her schedule.",
        ],
    )
    assert not any("Volvo FH" in text for text in current)  # sold: no longer current
    assert "Теперь на Scania S500" in current
    # two unresolved pronouns are not one person: neither replaces the other
    assert "She's a nurse at the regional hospital" in current and "The teacher changed her schedule" in current


def test_a_change_said_in_the_other_language_replaces_the_thing_it_names_by_sound(service):
    current = current_after(
        service,
        ["Master class price is 2500 rubles per person, 3 hours.", "Подняла цену мастер-класса до 3000."],
    )
    assert list(current) == ["Подняла цену мастер-класса до 3000"]


def test_the_cached_current_memories_follow_every_kind_of_change_made_elsewhere(tmp_path, embedder):
    """A server's cache is patched with what changed (read from the history), not read again in full: after adds,
    updates, a forget, a pin and an edit made through another store (another process), it equals a fresh read."""
    path = tmp_path / "c.sqlite3"
    with ConversationLog(path) as mine_log, ConversationLog(path) as other_log:
        mine = MemoryService(mine_log, MemorySettings(), embedder=embedder)
        other = MemoryService(other_log, MemorySettings(), embedder=embedder)
        first = other.add("I live in Kazan")
        other.add("My sister Ira lives in Minsk", about="sister Ira")
        doomed = other.add("I play chess on Sundays")
        assert len(mine.store.current_matrix().memories) == 3  # cached now
        moved = said(other, "I live in Perm")
        other.store.apply([Operation("UPDATE", moved, target=first.id)])
        other.forget(doomed.id)
        other.store.set_pinned(moved.id, True)
        other.edit(moved.id, "I live in Perm, on Lenina street")
        other.add("My brother Oleg is a pilot", about="brother Oleg")
        read = []
        full_read = mine.store._current_rows
        mine.store._current_rows = lambda ids: read.append(ids) or full_read(ids)
        patched = mine.store.current_matrix()
        assert read == [{moved.id, first.id, doomed.id, patched.memories[-1].id}]  # only what changed was read
        with ConversationLog(path) as fresh_log:
            fresh = MemoryStore(fresh_log).current_matrix()
    assert [m.id for m in patched.memories] == [m.id for m in fresh.memories]
    assert [(m.text, m.pinned) for m in patched.memories] == [(m.text, m.pinned) for m in fresh.memories]
    assert np.allclose(patched.vectors, fresh.vectors)
    assert patched.row_of == fresh.row_of and patched.people == fresh.people
    assert {m.text for m in patched.memories} == {
        "My sister Ira lives in Minsk",
        "I live in Perm, on Lenina street",
        "My brother Oleg is a pilot",
    }


def test_forgetting_takes_what_was_said_together_and_not_someone_elses_memory(service):
    current = current_after(
        service,
        [
            "Моя девушка Лейла — стоматолог, у неё скоро конференция.",
            "Ещё я лечусь от гастрита, пью омепразол.",
            "Forget about my stomach stuff, it's private.",
        ],
    )
    assert set(current) == {"Моя девушка Лейла — стоматолог", "Девушка Лейла: У неё скоро конференция"}


def test_a_forget_request_in_the_other_language_finds_the_closest_memory(service):
    current = current_after(
        service,
        [
            "I'm planning a surprise trip to Montenegro for Leyla's birthday.",
            "I want to open my own bistro.",
            "И забудь про сюрприз для Лейлы, она всё узнала.",
        ],
    )
    assert list(current) == ["I want to open my own bistro"]


def test_the_newest_of_two_memories_answering_a_question_is_offered_when_it_says_it_changed(service):
    current_after(
        service,
        [
            "Also vegetarian here, for like 6 years.",
            "I play chess on Saturdays.",
            "Started eating fish again. So pescatarian now I guess.",
            "My lichess rapid rating is around 1450.",
            "And my lichess rapid rating is finally 1520 lol.",
        ],
    )
    diet = [r.memory.text for r in service.recall("What's my diet like these days?")]
    assert any("pescatarian" in text for text in diet) and not any("vegetarian" in text for text in diet)
    rating = [r.memory.text for r in service.recall("What's my lichess rating?")]
    assert any("1520" in text for text in rating) and not any("1450" in text for text in rating)
    assert any("chess on Saturdays" in r.memory.text for r in service.recall("What do I do on Saturdays?"))


def test_a_statement_without_a_subject_key_does_not_replace_the_users_job(service):
    current = current_after(
        service,
        [
            "С 1 апреля я продуктовый дизайнер в Яндекс Go!",
            "На новой работе решили собирать дизайн-систему в Figma, с токенами.",
        ],
    )
    assert "С 1 апреля я продуктовый дизайнер в Яндекс Go" in current


def test_my_wife_finds_what_was_said_about_her_by_name(service):
    current_after(service, ["My wife Anna and our son Leo moved with me.", "Anna teaches piano at a music school."])
    assert any("piano" in r.memory.text for r in service.recall("What does my wife do for a living?"))


def test_a_change_sharing_the_questions_word_replaces_what_it_answered_and_a_weak_change_nothing_strong(service):
    current_after(
        service,
        [
            "Дейли у нас в 10:00, и к нему обычно половина не успевает посмотреть PR.",
            "Подвернула ногу на льду у подъезда, растяжение связок, в лангете 2 недели.",
            "И мы перенесли дейли на 9:30.",
            "Меня перевели в реанимацию с понедельника.",
        ],
    )
    daily = [r.memory.text for r in service.recall("Во сколько у нас дейли?")]
    assert any("9:30" in text for text in daily) and not any("10:00" in text for text in daily)
    # a transfer at work barely answers a question about the ankle: it replaces nothing there
    assert any("растяжение" in r.memory.text for r in service.recall("что у меня с ногой?"))


def test_forgetting_a_topic_takes_every_memory_that_names_it(service):
    current = current_after(
        service,
        [
            "Мне 68, на пенсии.",
            "Пенсия у меня 31 тыща, плюс иногда подрабатываю консультациями.",
            "My hobby is fishing.",
            "И про пенсию мою тоже сотри, сколько получаю.",
        ],
    )
    assert list(current) == ["My hobby is fishing"]


def test_a_when_question_lets_a_moved_date_replace_the_old_one_said_in_other_words():
    from konsilium.memory.recall import Recalled, newest_on_each_subject

    def memory(text, created, vector):
        vector = np.asarray(vector, dtype=np.float32)
        return Memory(new_memory_id(), text, created=created, updated=created, vector=vector / np.linalg.norm(vector))

    older = memory("Launch deadline is August 14", 1.0, [1.0, 0.0])
    newer = memory("PM says the go-live is actually August 28", 2.0, [0.2, 0.98])  # cosine 0.2: other words
    hits = [Recalled(older, 0.5), Recalled(newer, 0.45)]
    kept = [h.memory.text for h in newest_on_each_subject(hits, "When is the route-optimizer launch?")]
    assert kept == ["PM says the go-live is actually August 28"]
    # asked what, not when, the two stay apart: nothing says they are one subject
    assert len(newest_on_each_subject(hits, "What is the route-optimizer?")) == 2


def test_two_deadlines_told_apart_only_by_their_first_word_are_one_but_two_activities_stay_two():
    from konsilium.memory.recall import Recalled, newest_on_each_subject

    def memory(text, key, created, vector):
        vector = np.asarray(vector, dtype=np.float32)
        vector = vector / np.linalg.norm(vector)
        return Memory(new_memory_id(), text, key=key, created=created, updated=created, vector=vector)

    close = [0.8, 0.6]  # cosine 0.8 with [1, 0]
    old_cover = memory("Рисую обложку для «Лисьей тропы», сдать надо 15 марта", "deadline:рис", 1.0, [1.0, 0.0])
    new_cover = memory("Ура, дедлайн по обложке съехал на 2 апреля", "deadline:обложк", 2.0, close)
    kept = newest_on_each_subject([Recalled(old_cover, 0.5), Recalled(new_cover, 0.5)], "Когда сдавать обложку?")
    assert [h.memory.text for h in kept] == [new_cover.text]
    pilates = memory("Хожу на пилатес по вторникам", "schedule:pilates", 1.0, [1.0, 0.0])
    swimming = memory("Теперь плаваю по пятницам", "schedule:swimming", 2.0, close)
    assert len(newest_on_each_subject([Recalled(pilates, 0.5), Recalled(swimming, 0.5)], "Чем я занимаюсь?")) == 2


@pytest.mark.parametrize(
    "text",
    [
        "Progress review got bumped to April 2nd",
        "Покрасилась в синий",
        "Тимур устроился саунд-дизайнером в студию",
        "Misha has changed his sport, the coach was too strict, and now he does judo",
        "Got a dorm room, 210€ a month, no more insane rent",
    ],
)
def test_a_change_said_without_the_usual_words_still_reads_as_one(text):
    from konsilium.memory.subjects import replaces_something

    assert replaces_something(text)


@pytest.mark.parametrize("text", ["Now I swim on Sundays too.", "Now I also swim on Sundays"])
def test_a_change_that_adds_replaces_nothing(text):
    from konsilium.memory.subjects import replaces_something

    assert not replaces_something(text)


def test_a_forget_request_sharing_only_a_common_word_with_a_memory_leaves_it(service):
    current = current_after(
        service,
        [
            "Мы переехали в Сандвикен, квартира больше и вид на гавань.",
            "I cycle to the lab on a second-hand Brompton.",
            "Забудь, пожалуйста, всё про мой вид на жительство.",
        ],
    )
    assert "Мы переехали в Сандвикен, квартира больше и вид на гавань" in current


def test_a_forget_request_finds_its_word_inside_a_longer_one_and_in_another_form(service):
    current = current_after(
        service,
        [
            "Хожу к психотерапевту по четвергам.",
            "По пятницам я играю в покер с друзьями.",
            "Я болею за Спартак с детства.",
            "Удали из памяти всё, что касается моей терапии.",
            "Кстати, забудь про мои пятничные карточные игры — я с этим завязал.",
        ],
    )
    assert list(current) == ["Я болею за Спартак с детства"]


def test_a_new_job_replaces_the_old_role_and_what_was_said_of_the_work_only_adds(service):
    current = current_after(
        service,
        [
            "Я диспетчер в транспортной компании в Екатеринбурге.",
            "Работаю сменами 2/2, с 8 до 20.",
            "Работаю су-шефом в ресторане «Ложка».",
            "Уволился — с понедельника я шеф и совладелец бистро «Dvorište».",
        ],
    )
    # the su-chef role replaced the dispatcher's, the new job the su-chef's; the shifts were never a job change
    assert set(current) == {
        "Работаю сменами 2/2, с 8 до 20",
        "Уволился — с понедельника я шеф и совладелец бистро «Dvorište»",
    }


def test_forgetting_what_was_said_of_someone_takes_all_of_it_said_then_and_nothing_said_before(service):
    from konsilium.memory import Exchange

    told = [
        {"role": "user", "content": "My brother Liam is a paramedic in Dublin."},
        {"role": "assistant", "content": "OK"},
    ]
    turns = [
        told[:1],
        [*told, {"role": "user", "content": "He's also got a gambling problem. He lost nearly ten grand last year."}],
        [{"role": "user", "content": "Erase the bit about Liam's gambling, please — it's not my story to tell."}],
    ]
    for i, messages in enumerate(turns):
        exchange = Exchange(
            f"chatcmpl-{i}", 1.7e9 + i, "chat.completions", "konsilium", None, messages, "ok", "stop", []
        )
        service.store.log.record(exchange)
        service.catch_up()
    texts = [m.text for m in service.store.list()]
    assert any("paramedic" in text for text in texts)
    assert not any("gambling" in text or "ten grand" in text for text in texts)


def test_a_relation_said_in_passing_lets_a_question_by_relation_find_the_persons_memories(service):
    current_after(
        service,
        [
            "Мы с женой Олей переезжаем в Тбилиси в мае.",
            "Мой коллега Артём живёт в Казани и пишет на Rust.",
            "Купил ThinkPad X1 Carbon на 32 гига.",
            "Я хожу в бассейн по утрам.",
            "Бросил кофе, теперь пью матчу.",
            "Оля уволилась и теперь рисует иллюстрации для детских книг.",
        ],
    )
    recalled = [r.memory.text for r in service.recall("Чем сейчас занимается моя жена?", k=2)]
    assert "Оля уволилась и теперь рисует иллюстрации для детских книг" in recalled


def test_a_new_wish_on_how_long_answers_are_replaces_the_old_one_and_leaves_the_others(service):
    current_after(
        service,
        [
            "Отвечай по делу, в двух-трёх предложениях, без лекций.",
            "Пиши без эмодзи, пожалуйста.",
            "И формат ответов давай поменяем: разворачивай подробно и со ссылками на исследования.",
        ],
    )
    pinned = {m.text for m in service.store.list() if m.pinned}
    assert pinned == {
        "Пиши без эмодзи, пожалуйста",
        "И формат ответов давай поменяем: разворачивай подробно и со ссылками на исследования",
    }


def test_a_change_of_the_named_persons_city_replaces_it_and_leaves_what_else_was_said_with_it(service):
    current_after(
        service,
        [
            "Мой брат Глеб — пилот в Аэрофлоте.",
            "Глеб живёт в Сочи, у него двое сыновей.",
            "Глеб перебрался в Калининград, летает теперь оттуда.",
        ],
    )
    where = [r.memory.text for r in service.recall("Where does my brother Gleb live now?", k=3)]
    assert "Глеб перебрался в Калининград, летает теперь оттуда" in where
    assert not any("Сочи" in text for text in where)
    kids = [r.memory.text for r in service.recall("Сколько детей у Глеба?", k=3)]
    assert "Глеб: У него двое сыновей" in kids


def test_a_person_named_in_passing_keeps_what_is_said_of_them_later_and_of_him(service):
    from konsilium.memory import Exchange

    said = [
        "My partner Tomasz and I have a ginger cat called Skrei.",
        "Tomasz is from Gdańsk, we met at a conference there.",
        "He works as a backend developer at AquaSight.",
        "Tomasz started at Equinor this month, working with subsea sensor data.",
    ]
    history: list[dict] = []
    for i, text in enumerate(said):
        history = [*history, {"role": "user", "content": text}]
        exchange = Exchange(
            f"chatcmpl-{i}", 1.7e9 + i, "chat.completions", "konsilium", None, history, "ok", "stop", []
        )
        service.store.log.record(exchange)
        service.catch_up()
        history = [*history, {"role": "assistant", "content": "ok"}]
    about = {m.text: m.about for m in service.store.list(status=None)}  # (his old job is superseded by the new)
    assert about["Tomasz is from Gdańsk"] == "partner Tomasz"
    assert about["Tomasz: He works as a backend developer at AquaSight"] == "partner Tomasz"
    where = [r.memory.text for r in service.recall("Where does Tomasz work?", k=3)]
    assert "Tomasz started at Equinor this month, working with subsea sensor data" in where
    assert not any("AquaSight" in text for text in where)


def test_a_forget_request_in_other_words_or_the_other_language_finds_the_memory_and_only_it(service):
    current = current_after(
        service,
        [
            "Also my residence permit renewal with UDI is stuck.",
            "Мы переехали в Сандвикен, квартира больше и вид на гавань.",
            "And i got a wolf tattoo on my left shoulder.",
            "Машину поменяли: теперь у нас подержанный Haval Jolion.",
            "А ещё на неё пришлось взять кредит 800 тысяч.",
            "Забудь, пожалуйста, всё про мой вид на жительство.",
            "and nvm the ink thing i told u about, my mom would kill me. forget it",
            "Please also forget about the car loan — I don't want that stored.",
        ],
    )
    assert set(current) == {
        "Мы переехали в Сандвикен, квартира больше и вид на гавань",
        "Машину поменяли: теперь у нас подержанный Haval Jolion",
    }


def test_a_question_finds_a_memory_said_in_the_other_language_through_the_glossary(service):
    current_after(
        service,
        [
            "Wednesday nights I sing in the male voice choir in town.",
            "I'll have a go at «Каштанка» next.",
            "Соседка, she'd like that.",
            "I've barely left Carmarthenshire since the foot-and-mouth.",
            "Sold forty ewes at Llandovery mart on Tuesday.",
            "Whole valley's talking.",
        ],
    )
    recalled = [r.memory.text for r in service.recall("Где я пою по средам?", k=1)]
    assert "Wednesday nights I sing in the male voice choir in town" in recalled


def test_a_change_said_in_the_other_language_replaces_the_old_answer_to_a_question_on_it(service):
    current_after(
        service,
        [
            "Родители мои в Самаре — папа Борис и мама Людмила.",
            "I sing in a choir on Wednesdays.",
            "And my parents finally moved to Cyprus, they rent a small flat in Paphos.",
        ],
    )
    where = [r.memory.text for r in service.recall("Where do my parents live?", k=3)]
    assert any("Paphos" in text for text in where)
    assert not any("Самаре" in text for text in where)


def test_forgetting_takes_the_sentence_beside_that_goes_on_about_it_and_not_the_one_on_something_else(service):
    current = current_after(
        service,
        [
            "Последний месяц болит спина. Хожу к остеопату раз в две недели. Работаю в Яндексе бэкендером.",
            "Please forget about my back problems, it's all fine now.",
        ],
    )
    assert list(current) == ["Работаю в Яндексе бэкендером"]


def test_a_forget_request_about_the_users_own_job_leaves_his_wifes_and_a_short_word_is_no_longer_ones(service):
    current = current_after(
        service,
        [
            "Моя жена Марина — фармацевт, работает в аптеке.",
            "Подрабатываю на скорой — два ночных дежурства в месяц.",
            "Отпуск в этом году будет на Байкале.",
            "Thinking about buying a motorcycle, a Honda CB500.",
            "Forget my ambulance side job — I quit it.",
            "Про байк забудь — передумал.",
        ],
    )
    assert set(current) == {"Моя жена Марина — фармацевт, работает в аптеке", "Отпуск в этом году будет на Байкале"}


def test_forgetting_his_debt_takes_the_debt_of_the_person_the_sentence_named(service):
    current = current_after(
        service,
        [
            "Брат Лёша занял у меня 50 тысяч до осени.",
            "Я вешу 92 кг, врач сказал сбросить хотя бы пять.",
            "Lyosha paid me back, so drop the thing about his debt.",
            "Forget my weight, I don't want it stored.",
        ],
    )
    assert current == {}


def test_two_facts_of_one_message_stand_together_and_a_move_replaces_only_the_city(service):
    current_after(
        service,
        [
            "Кстати, брат Глеб летает пилотом в S7, у него вечно графики — никак не соберёмся.",
            "Глеб живёт в Сочи, у него двое сыновей.",
            "Глеб перебрался в Калининград, летает теперь оттуда.",
        ],
    )
    texts = {m.text for m in service.store.list()}
    assert "Брат Глеб летает пилотом в S7" in texts
    assert "Глеб: У него двое сыновей" in texts
    assert "Глеб живёт в Сочи" not in texts


def test_a_statement_on_a_subject_that_gives_it_no_value_replaces_nothing(service):
    current_after(
        service,
        [
            "Машина у нас Skoda Octavia 2017 года, белая.",
            "Купили новую машину — Haval Jolion, серый.",
            "Новая машина отлично едет.",
        ],
    )
    texts = {m.text for m in service.store.list()}
    assert texts == {"Купили новую машину — Haval Jolion, серый", "Новая машина отлично едет"}


def test_the_questions_word_with_another_number_replaces_the_old_number(service):
    current_after(
        service,
        [
            "И ещё по аренде: плачу 185 тысяч в месяц арендодателю.",
            "Вечер добрый, игорь Семёнович прислал допсоглашение: с апреля аренда будет 215 тысяч в месяц.",
            "My birthday is March 12, by the way.",
            "Годовщина свадьбы у нас 3 сентября.",
        ],
    )
    rent = [r.memory.text for r in service.recall("Сколько я плачу за аренду?", k=3)]
    assert any("215" in text for text in rent) and not any("185" in text for text in rent)
    birthday = [r.memory.text for r in service.recall("Когда у меня день рождения?", k=3)]
    assert "My birthday is March 12, by the way" in birthday


def test_forgetting_a_person_takes_what_was_said_of_them_in_either_script_and_no_look_alike_word(service):
    current = current_after(
        service,
        [
            "My ex Nastya still texts me sometimes.",
            "My tutor is called Galina, she's from Omsk.",
            "Сотри всё, что я рассказывал про Настю, не хочу это хранить.",
        ],
    )
    assert list(current) == ["My tutor is called Galina, she's from Omsk"]


def test_forgetting_what_a_question_asks_forgets_the_answer_to_it(service):
    # "сколько" names nothing the memory holds: only "вешу" must match "вешу 78 кг"
    current = current_after(
        service,
        [
            "Новости! Я ушла из клиники. С понедельника работаю в «ВетЛайн», буду заведовать отделением терапии.",
            "Про себя тоже надо: вешу 78 кг, хочу к лету 68. Реально с бегом?",
            "ок. и забудь, сколько я вешу, не хочу, чтобы это где-то хранилось",
        ],
    )
    assert not any("78" in text for text in current)
    assert any("ВетЛайн" in text for text in current)


def test_asked_where_someone_lives_their_move_to_another_place_replaces_the_old_place(service):
    current_after(
        service,
        [
            "Мой брат Костя живёт в Питере, работает программистом в Яндексе.",
            "Костя теперь в Казани — ему предложили должность тимлида, перевёз туда всю семью.",
        ],
    )
    answer = " ".join(r.memory.text for r in service.recall("В каком городе живёт мой брат?"))
    assert "Казани" in answer and "Питере" not in answer
    # asked about his work, both stay: the move says nothing of the old job
    work = " ".join(r.memory.text for r in service.recall("Где работает мой брат Костя?"))
    assert "Яндексе" in work


def test_being_in_a_known_place_is_where_one_lives():
    from konsilium.memory.extract import extract
    from konsilium.memory.places import places

    assert places("живут в Казани") == places("Kazan") != frozenset()
    assert places("Я в Яндексе") == frozenset()
    (novosibirsk, _) = extract(["Я, кстати, в Новосибирске, у нас тут -35 сегодня."]).statements
    assert novosibirsk.key == "home.city"
    (holiday,) = extract(["Мы в Турции отдыхаем."]).statements
    assert holiday.key is None


def test_a_new_job_named_by_nothing_keeps_the_job_it_names_and_quitting_a_diet_is_no_job(service):
    current = current_after(
        service,
        [
            "Big change — I quit my job last week. Starting at Kolesa Group on Monday as a senior Go dev.",
            "I'm also on keto since January.",
            "Easier with the new job.",
            "Also quit the low-carb thing, doing 16:8 intermittent fasting now.",
        ],
    )
    assert any("Kolesa" in text for text in current)
    # the diet's change leaves the job's alone
    assert any("16:8" in text for text in current) and any("quit my job" in text for text in current)


def test_forgetting_a_move_somewhere_keeps_everyone_elses_moves(service):
    current = current_after(
        service,
        [
            "Ещё новости: Гоша перевёлся в ИТМО, переехал в Питер, живёт в общаге на Вяземском.",
            "По шахматам: «Ладья» переехала в другое помещение, теперь собираемся по субботам.",
            "И ещё, забудь, пожалуйста, про переезд на юг, это я так, помечтал.",
        ],
    )
    assert any("ИТМО" in text for text in current) and any("Ладья" in text for text in current)


def test_forgetting_someone_by_name_in_the_other_script_forgets_them_and_nothing_close_in_meaning(service):
    current = current_after(
        service,
        [
            "I live in Yaroslavl, retired since last year.",
            "Да, и бывший начальник Кравцов опять звонил, просит бесплатную консультацию по ремонту путей, вот наглец.",
            "And forget everything about Kravtsov, I don't want to keep grudges.",
        ],
    )
    assert not any("Кравцов" in text for text in current)
    assert any("Yaroslavl" in text for text in current)


def test_the_glossary_names_smoking_skin_and_a_shrink_in_both_languages():
    from konsilium.index.text import analyze
    from konsilium.memory import glossary

    def shared(a: str, b: str) -> bool:
        return bool(glossary.naming(set(analyze(a))).keys() & glossary.naming(set(analyze(b))).keys())

    assert shared("про сигареты", "I still smoke like half a pack a day")
    assert shared("the skin stuff", "seeing a dermatologist for psoriasis")
    assert shared("me seeing a shrink", "Я с января хожу к психотерапевту")
    assert shared("Какая у меня стипендия?", "Плюс стипуху повысили, теперь 5200")
    assert not shared("про сигареты", "seeing a dermatologist")


def test_a_forget_request_pointing_at_a_story_forgets_what_it_names_and_not_a_namesake(service):
    current = current_after(
        service,
        [
            "Я ветеринар-терапевт, работаю в клинике «Лапа» в Томске.",
            "Я хожу к психотерапевту раз в две недели, из-за выгорания.",
            "Я взяла кредит 800 тысяч в Тинькофф на ремонт, платёж 27 тыс в месяц.",
            "Quick one: please forget the therapy stuff I told you, I'd rather keep that private.",
            "Забудь ту историю с кредитом, не хочу, чтобы это где-то хранилось.",
        ],
    )
    assert not any("психотерапевт" in text or "кредит" in text for text in current), current
    assert any("ветеринар-терапевт" in text for text in current) and any("Лап" in text for text in current)


def test_forgetting_what_he_earns_finds_take_home_pay_in_the_other_language(service):
    current = current_after(
        service,
        [
            "I take home 4200 a month after tax.",
            "Our max budget for a flat is 120k EUR.",
            "И забудь, сколько я зарабатываю.",
        ],
    )
    assert not any("4200" in text for text in current) and any("120k" in text for text in current)


def test_no_longer_doing_something_and_a_stolen_bike_replace_what_was_said(service):
    current = current_after(
        service,
        [
            "I go bouldering every Saturday.",
            "I ride my Cannondale road bike to the office.",
            "Oh and I no longer go bouldering — wrist's done with it.",
            "My bike got nicked from outside the supermarket, so I bought a Segway Ninebot e-scooter.",
        ],
    )
    assert not any("every Saturday" in text or "Cannondale" in text for text in current), current
    assert any("Ninebot" in text for text in current)


def test_a_car_parked_names_no_new_car_and_the_name_said_again_keeps_the_full_name(service):
    current = current_after(
        service,
        [
            "Меня зовут Геннадий Петрович, можно просто Геннадий.",
            "Живём с женой Людмилой в Калуге.",
            "Короче, продал я свою Ниву и взял Рено Дастер 2019 года.",
            "Геннадий на связи. Мы с Валерой двадцать лет в одном КБ сидели, он сейчас в Обнинске живёт.",
            "И раз машина теперь во дворе ночует, я гараж решил продать.",
            "И про лотерею тоже забудь, бросил я это дело.",
        ],
    )
    assert any("Геннадий Петрович" in text for text in current) and any("Калуге" in text for text in current)
    assert any("Дастер" in text for text in current), current


def test_forgetting_the_lottery_forgets_the_lotto_tickets(service):
    current = current_after(
        service,
        [
            "А ещё я каждое воскресенье билет «Русского лото» беру, по 300 рублей.",
            "Пенсия у меня 34 тысячи.",
            "И про лотерею тоже забудь, бросил я это дело.",
        ],
    )
    assert not any("лото" in text for text in current) and any("Пенсия" in text for text in current)


def test_the_glossary_ties_loose_names_for_habits_health_and_money_to_the_words_said():
    from konsilium.index.text import analyze
    from konsilium.memory import glossary

    def shared(a: str, b: str) -> bool:
        return bool(glossary.naming(set(analyze(a))).keys() & glossary.naming(set(analyze(b))).keys())

    assert shared("сигареты", "на нервах опять начала курить, полпачки в день")
    assert shared("the mental health stuff", "Been seeing a therapist on wednesdays for anxiety")
    assert shared("ту историю с криптой", "Also lost like 4k on memecoins last month")
    assert shared("мои займы", "в декабре я взяла микрозайм на 30 тысяч")
    assert shared("забудь, сколько я зарабатываю", "I take home 4200 a month after tax")
    assert not shared("the therapy stuff", "Я ветеринар-терапевт")  # a GP's title, not therapy
    assert not shared("мой долг Карлу", "doing bolt food deliveries now, way better money")


def test_a_fragment_is_found_by_what_was_said_before_it_in_the_same_message(service):
    current_after(
        service,
        [
            "Коплю на мот, хочу хонду cb400. Пока отложено 38к",
            "Я в шоке от цен на аренду",
            "Учусь в политехе на 2 курсе",
            "Любимое аниме - евангелион",
            "Я в наушниках играю",
            "Уже неделю в общаге",
        ],
    )
    fragment = next(m for m in service.store.list() if m.text == "Пока отложено 38к")
    assert fragment.search_vector is not None and fragment.vector is not None  # both kept, one for each use
    found = [hit.memory.text for hit in service.search("сколько я накопил на мотоцикл?", k=3)]
    assert "Пока отложено 38к" in found, found
    edited = service.edit(fragment.id, "Пока отложено 40к")
    assert service.store.get(edited.id).search_vector is None  # new words: said in no context any more


def test_someones_changed_schedule_replaces_the_users_own_plan_around_it_on_that_subject(service):
    current_after(
        service,
        [
            "По вторникам забираю внука Артёма с шахмат.",
            "Мой тимлид Марко — фанат баскетбола.",
            "И у артема тренер расписание поменял, шахматы по четвергам.",
            "Марко переезжает в Амстердам в июле.",
        ],
    )
    offered = [hit.memory.text for hit in service.recall("В какой день я забираю Артёма с шахмат?", k=5)]
    assert any("четверг" in text for text in offered) and not any("вторник" in text for text in offered), offered
    offered = [hit.memory.text for hit in service.recall("Чем увлекается мой тимлид?", k=5)]
    assert any("баскетбол" in text for text in offered), offered  # his move is no news of his hobby


def test_forgetting_the_clinic_in_slang_takes_what_the_clinic_said(service):
    current = current_after(
        service,
        [
            "Был в поликлинике, сказали гастрит.",
            "Учусь в политехе на 2 курсе.",
            "Потом. Сотри плз инфу про больничку, ну про желудок. Не хочу чтоб это где то висело.",
        ],
    )
    assert not any("гастрит" in text for text in current), current
    assert any("политех" in text for text in current) and not any("висело" in text for text in current)


def test_a_change_that_names_no_value_leaves_an_older_statement_that_names_one(service):
    current = current_after(
        service,
        ["Наконец продали старого немца, теперь жарим на Giesen W6.", "Also sold my old boxer-engine wagon."],
    )
    assert any("Giesen W6" in text for text in current), current


def test_forgetting_a_dispute_with_the_landlord_named_in_other_words_forgets_it(service):
    current = current_after(
        service,
        [
            "Our landlord is taking us to arbitration court — he wants to keep our 180k deposit.",
            "Our roastery is called Kedr Roasters.",
            "Забудь про разборки с бывшим хозяином помещения — договорились мировой.",
        ],
    )
    assert not any("landlord" in text for text in current) and any("Kedr" in text for text in current), current


def test_a_new_thing_one_owns_is_no_news_of_a_statement_sharing_the_asked_word(service):
    current_after(
        service,
        [
            "Our roastery is called Kedr Roasters.",
            "I now drive a Toyota Hilux, need a pickup to haul sacks between the warehouse and the roastery.",
        ],
    )
    offered = [hit.memory.text for hit in service.recall("What's the name of my roastery?", k=5)]
    assert any("Kedr" in text for text in offered), offered


def test_forgetting_the_tax_thing_in_english_takes_the_tax_demand_said_in_russian(service):
    current = current_after(
        service,
        [
            "Налоговая прислала требование: доначисление 340 тысяч по УСН.",
            "Oh, and the thing with the tax office got settled. Forget the tax thing, please.",
        ],
    )
    assert not any("340" in text for text in current), current


@pytest.mark.parametrize(
    ("said", "forget", "gone"),
    [
        ("Мой бывший Стас до сих пор должен мне 45 тысяч.", "Please forget everything about my ex.", "Стас"),
        ("У меня грыжа L5-S1, мешки таскать нельзя.", "Забудь про мою спину, лечусь и ладно.", "грыжа"),
        ("I'm taking sertraline 50mg every morning.", "Забудь, что я пью антидепрессанты.", "sertraline"),
    ],
)
def test_forgetting_names_what_was_said_in_other_words_of_its_kind(service, said, forget, gone):
    current = current_after(service, [said, "Учусь в политехе на 2 курсе.", forget])
    assert not any(gone in text for text in current) and any("политех" in text for text in current), current


def test_a_change_keyed_to_one_subject_leaves_another_keyed_subject(service):
    current = current_after(service, ["Теперь вешу 88 кг.", "Теперь получаю 33 600."])
    assert any("88 кг" in text for text in current) and any("33 600" in text for text in current), current


def test_a_new_amount_in_the_same_unit_said_to_change_replaces_the_old_dose(service):
    current_after(service, ["Я пью эутирокс 50 мкг по утрам.", "Теперь 75 мкг, и через 6 недель пересдать ТТГ."])
    offered = [hit.memory.text for hit in service.recall("Какая у меня дозировка эутирокса?", k=5)]
    assert any("75 мкг" in text for text in offered) and not any("50 мкг" in text for text in offered), offered


def test_a_common_word_starting_like_someones_name_forgets_nothing_of_theirs(service):
    current = current_after(
        service,
        [
            "Сын Денис переехал в Новосибирск, работает в такси.",
            "Занял у кума Толика 150 тысяч до осени.",
            "С кумом рассчитался. Удали всё, что я тебе про те деньги говорил.",
        ],
    )
    assert any("Новосибирск" in text for text in current)  # "деньги" is not Денис


def test_a_name_said_in_lowercase_is_still_the_person_a_forget_request_names(service):
    current = current_after(
        service,
        [
            "Артём, муж дочки, работает электриком на ТЭЦ.",
            "зять артём опять в запой ушёл неделю уже",
            "Отпуск у меня с 10 июля.",
            "Забудь всё, что я рассказывал про Артёма.",
        ],
    )
    assert list(current) == ["Отпуск у меня с 10 июля"]


def test_forgetting_takes_a_fragment_beside_it_that_goes_on_about_it_in_context(service):
    current = current_after(
        service,
        [
            "Давление скачет последние месяцы. Пью лозартан. Работаю в Яндексе бэкендером.",
            "Забудь про моё давление, пожалуйста.",
        ],
    )
    assert list(current) == ["Работаю в Яндексе бэкендером"]


def test_another_figure_in_another_unit_on_the_asked_word_does_not_hide_the_answer(service):
    current_after(
        service,
        [
            "Обновили прайс: стерилизация кошки теперь 5200, кастрация кота 2900.",
            "Кошка 4 кг, хбп, креатинин 280, рвота.",
        ],
    )
    offered = [r.memory.text for r in service.recall("сколько у нас стоит стерилизация кошки?", k=3)]
    assert any("5200" in text for text in offered)
