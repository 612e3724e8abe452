"""The deterministic extractor: what a user's own words say about him and his people, in Russian and English."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract, key_is_exclusive


def one(text: str):
    statements = extract([text]).statements
    assert len(statements) == 1, statements
    return statements[0]


@pytest.mark.parametrize(
    ("text", "about", "kind", "key", "update"),
    [
        ("Hi, I'm Lena.", "user", "identity", "name", False),
        ("Меня зовут Андрей.", "user", "identity", "name", False),
        ("I work as a biology teacher in Tver.", "user", "work", "job", False),
        ("Я сменила работу: теперь я методист в школе онлайн-образования.", "user", "work", "job", True),
        ("My laptop is a ThinkPad T14 with 16 GB of RAM.", "user", "device", "laptop.ram", False),
        ("Upgraded the laptop RAM to 32 GB.", "user", "device", "laptop.ram", True),
        ("Tutor sessions moved to Fridays.", "user", "schedule", "schedule:tutor", True),
        ("Занятия с репетитором перенесли на четверг.", "user", "schedule", "schedule:tutor", True),
        ("I moved to Kazan last month.", "user", "home", "home.city", True),
        ("Переехал в Казань.", "user", "home", "home.city", True),
        ("I bought a new GPU, an RTX 4090.", "user", "device", "gpu", True),
        ("У меня видеокарта RTX 3060.", "user", "device", "gpu", False),
        ("My friend Igor has an RTX 3090.", "friend Igor", "person", "gpu", False),
        ("Моя сестра Ира живёт в Минске.", "сестра Ира", "person", "home.city", False),
        ("I no longer eat meat.", "user", "health", "diet", True),
        ("Отвечай мне на русском.", "user", "preference", "answer.language", False),
        ("I prefer short answers.", "user", "preference", "answer.style", False),
        ("The thesis deadline moved to June 30.", "user", "plan", "deadline:thesi", True),
        ("I love hiking in the mountains.", "user", "preference", None, False),
        ("По средам в 19:00 пою в хоре при филармонии.", "user", "schedule", "schedule:choir", False),
        ("Choir rehearsals moved to Thursdays, same time.", "user", "schedule", "schedule:choir", True),
        ("Our son Miron is six.", "son Miron", "person", None, False),
        ("Папа Виктор вышел на пенсию.", "папа Виктор", "person", None, True),
        ("Дима, кстати, обновился — теперь у него RTX 5090.", "Дима", "person", "gpu", True),
    ],
)
def test_statements_get_who_what_and_whether_something_changed(text, about, kind, key, update):
    statement = one(text)
    assert (statement.about, statement.kind, statement.key, statement.update) == (about, kind, key, update)


def test_a_compound_sentence_is_two_statements_the_second_inheriting_the_first_person():
    statements = extract(["Я учу испанский, занимаюсь по вторникам с репетитором."]).statements
    assert [(s.text, s.key) for s in statements] == [
        ("Я учу испанский", "learning:language"),
        ("Занимаюсь по вторникам с репетитором", "schedule:tutor"),
    ]


def test_remember_requests_are_explicit_and_lose_their_prefix():
    statement = one("Запомни: я не ем глютен.")
    assert (statement.text, statement.explicit, statement.key) == ("Я не ем глютен", True, "diet")
    assert one("Remember that my passport expires in 2027.").text == "My passport expires in 2027"


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Забудь, что я учу испанский, я бросила.", "я учу испанский"),
        ("Please forget that I play chess.", "I play chess"),
        ("Забудь про мою старую машину.", "мою старую машину"),
    ],
)
def test_forget_requests_name_what_to_forget_and_never_become_statements(text, query):
    extraction = extract([text])
    assert [f.query for f in extraction.forgets] == [query] and extraction.statements == []


@pytest.mark.parametrize(
    "text",
    [
        "Что такое квантование модели?",
        "How do I install CUDA",
        "Напиши стихотворение про осень.",
        "Explain rotary embeddings.",
        "Python is a programming language.",
        "Привет!",
        "```python\nmy_list = [1, 2]\n```",
    ],
)
def test_questions_requests_greetings_code_and_general_facts_teach_nothing(text):
    assert extract([text]).statements == []


def test_a_pasted_document_keeps_only_what_the_user_asked_to_remember():
    pasted = "I think the results are good. " * 100 + "Remember: my exam is on May 5."
    assert [s.text for s in extract([pasted]).statements] == ["My exam is on May 5"]


def test_one_value_subjects_are_exclusive_lists_are_not():
    assert key_is_exclusive("job") and key_is_exclusive("schedule:tutor") and key_is_exclusive("laptop.ram")
    assert not key_is_exclusive("diet") and not key_is_exclusive("learning:language")


def test_a_new_subject_after_a_comma_is_a_statement_of_its_own():
    statements = extract(["На работу езжу на велосипеде, а машина у нас — Skoda Octavia."]).statements
    assert [(s.text, s.key) for s in statements][-1] == ("А машина у нас — Skoda Octavia", "car")
