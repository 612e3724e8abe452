from konsilium.index.text import analyze, cyrillic_share, query_terms, sound_key, terms_string


def test_russian_inflections_share_a_stem():
    assert analyze("видеокарта")[0] == analyze("видеокарту")[0] == analyze("видеокарты")[0]
    assert analyze("конфиге") == analyze("конфига")


def test_english_words_are_stemmed_and_stop_words_dropped():
    assert analyze("the configs of experts") == analyze("config expert")


def test_technical_compounds_keep_whole_and_parts():
    terms = analyze("Qwen3-30B-A3B rope_theta")
    assert "qwen3-30b-a3b" in terms and "qwen3" in terms and "30b" in terms
    assert "rope_theta" in terms and "theta" in terms


def test_yo_folds_to_ye():
    assert analyze("ещё всё объём") == analyze("еще все объем")


def test_terms_string_is_whitespace_joined_and_script_share():
    assert terms_string("Привет, мир!") == "привет мир r_prive"
    assert cyrillic_share("мир") == 1.0
    assert cyrillic_share("VRAM") == 0.0


def test_loanwords_get_the_same_sound_key_in_both_scripts():
    pairs = [("контекст", "context"), ("эксперты", "experts"), ("квантование", "quantization"), ("конфиг", "config")]
    for russian, english in pairs:
        assert sound_key(russian)[2:] == sound_key(english)[2:]
    assert sound_key("видеокарта") != sound_key("memory")
    assert sound_key("кот") is None  # short words would match too much


def test_an_english_query_asks_for_russian_sound_keys():
    assert "r_konte" in query_terms("How large can the context be?").split()
    assert "r_konte" in terms_string("Контекст беседы").split()
