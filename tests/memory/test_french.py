"""A user who writes in French: his forget requests are read as such ("Oublie ce que je t'ai dit sur mon poids"),
and what they name is gone from later recall; a reminder or his own forgetting asks nothing."""

from __future__ import annotations

import pytest

from konsilium.memory.extract import extract
from konsilium.memory.forget_requests import forget_query, month_told


@pytest.mark.parametrize(
    ("said", "topic"),
    [
        ("Oublie ce que je t'ai dit sur mon poids", "mon poids"),
        ("oublie que j'ai un chien", "j'ai un chien"),
        ("Efface de ta mémoire tout ce qui concerne mon ex", "mon ex"),
        ("Au fait, oublie ce que je t'ai dit en mars sur mon salaire", "mon salaire"),
        ("Tu peux oublier mon adresse stp", "mon adresse"),
        ("Peux-tu effacer l'info sur mon traitement ?", "mon traitement"),
        ("Mon ancien numéro, oublie-le stp", "Mon ancien numéro"),
        ("Ne retiens pas ce que je t'ai dit sur ma dette", "ma dette"),
        ("Oublie ça", ""),
        # a reminder, his own forgetting, ordinary work: no request
        ("N'oublie pas de m'appeler", None),
        ("oublie pas le pain", None),
        ("J'oublie toujours mes clés", None),
        ("Supprime la colonne B", None),
    ],
)
def test_a_french_forget_request_names_what_to_forget(said, topic):
    assert forget_query(said) == topic


def test_the_month_a_french_request_says_it_was_told_in():
    assert month_told("Oublie ce que je t'ai dit en février sur mon salaire") == 2


def test_a_french_forget_request_is_no_memory_and_forgets_what_it_names(service, make):
    assert extract(["Oublie ce que je t'ai dit sur mon poids."]).statements == []
    told = [
        "Je pèse 84 kilos en ce moment, c'est trop.",
        "J'ai une Honda CB750 de 1978.",
        "Ma sœur Claire est infirmière à Lyon.",
    ]
    for i, text in enumerate(told):
        service.store.log.record(make(i, messages=[{"role": "user", "content": text}]))
    service.catch_up()
    assert any("84 kilos" in r.memory.text for r in service.recall("Combien je pèse ?"))
    forgets = ["Tu peux oublier mon poids stp", "Au fait, efface ce que je t'ai dit sur Claire."]
    for i, text in enumerate(forgets, len(told)):
        service.store.log.record(make(i, messages=[{"role": "user", "content": text}]))
    service.catch_up()
    kept = [m.text for m in service.store.current_matrix().memories]
    assert not any("84 kilos" in text or "Claire" in text for text in kept)
    assert any("Honda CB750" in text for text in kept)
