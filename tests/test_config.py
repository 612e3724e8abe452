import pytest
import yaml
from pydantic import ValidationError

from konsilium.config import (
    SECTIONS,
    ConfigError,
    EngineSettings,
    Settings,
    defaults,
    open_home,
    parse_section,
    parse_settings,
    render_default_yaml,
    validate,
)


def test_first_use_creates_commented_defaults(tmp_path):
    home = open_home(tmp_path / "home")
    assert home.config_path.exists()
    assert yaml.safe_load(home.config_path.read_text()) == defaults()
    assert home.config.retrieval.mode == "hybrid"


def test_user_values_override_defaults(tmp_path):
    (tmp_path / "konsilium.yaml").write_text("retrieval:\n  k: 3\nvault:\n  exclude: ['drafts/**']\n")
    home = open_home(tmp_path)
    assert home.config.retrieval.k == 3
    assert home.config.vault.exclude == ["drafts/**"]
    assert home.config.retrieval.mode == "hybrid"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"retrival": {}}, "retrival: unknown section; allowed sections: vault, index, embedder, retrieval"),
        ({"retrieval": {"kk": 1}}, "retrieval.kk: unknown key; allowed keys in retrieval: mode, k"),
        (
            {"retrieval": {"mode": "fuzzy"}},
            "retrieval.mode: 'fuzzy' is not allowed; allowed values: hybrid, dense, bm25",
        ),
        ({"retrieval": {"k": "ten"}}, "retrieval.k: expected int, got str"),
        ({"retrieval": {"k": True}}, "retrieval.k: expected int, got bool"),
        ({"index": {"chunk_chars": 10}}, "index.chunk_chars: 10 is below the minimum 200"),
        ({"vault": {"exclude": [1]}}, "vault.exclude: expected a list of strings"),
        (["a"], "the top level must be a mapping"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_values(raw, message):
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert message in str(info.value)


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    (tmp_path / "konsilium.yaml").write_text("retrieval: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        open_home(tmp_path)


def test_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KONSILIUM_HOME", str(tmp_path / "envhome"))
    assert open_home().root == tmp_path / "envhome"


# --- typed settings ---------------------------------------------------------------------------------------------


def test_home_config_is_typed_and_agrees_with_the_plain_dicts(tmp_path):
    (tmp_path / "konsilium.yaml").write_text(
        "retrieval:\n  k: 3\nengine:\n  max_batch_size: 4\nadapter_cache:\n  queue_timeout_s: 5\n"
    )
    home = open_home(tmp_path)
    assert isinstance(home.config, Settings) and isinstance(home.config.engine, EngineSettings)
    assert home.config.retrieval.k == 3 and home.config.retrieval.mode == "hybrid"
    assert home.config.engine.max_batch_size == 4 and home.config.engine.max_batch_tokens == 32768
    assert home.config.adapter_cache.queue_timeout_s == 5.0  # an int is a fine number of seconds
    with pytest.raises(ValidationError):  # one home's settings are shared by everything that opened it
        home.config.retrieval.k = 1


def test_new_settings_have_their_defaults():
    settings = Settings()
    assert settings.adapter_cache.queue_timeout_s == 30.0
    assert settings.engine.kind == "transformers" and settings.server.port == 8000
    assert settings.adapters == {} and settings.roles == {}


def test_the_default_file_loads_back_to_the_defaults_and_documents_every_key():
    text = render_default_yaml()
    assert parse_settings(yaml.safe_load(text)) == Settings()
    lines = text.splitlines()
    for section, model in SECTIONS.items():
        start = lines.index(f"{section}:") + 1
        block = {line.split(":")[0].strip(): line for line in lines[start : start + len(model.model_fields)]}
        assert list(block) == list(model.model_fields), section  # every key, in the schema's order
        for key, info in model.model_fields.items():
            assert (info.description or "") in block[key], f"{section}.{key}: its help is not in the file"
    assert "  queue_timeout_s: 30.0  # how long a request waits for a free adapter slot before it gets 503" in lines
    assert "  kind: transformers  # one of: transformers, openai-upstream, vllm; which generator answers" in lines


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"retrieval": {"k": "5"}}, "retrieval.k: expected int, got str '5'"),
        ({"engine": {"max_batch_size": 4.0}}, "engine.max_batch_size: expected int, got float 4.0"),
        ({"server": {"context_share": True}}, "server.context_share: expected int or float, got bool True"),
        ({"server": {"retrieval": 1}}, "server.retrieval: expected bool, got int 1"),
        ({"server": {"port": None}}, "server.port: expected int, got NoneType None"),
        ({"engine": {"upstream_timeout_s": float("inf")}}, "engine.upstream_timeout_s: expected a finite number"),
        ({"vault": {"paths": "notes"}}, "vault.paths: expected a list of strings, got str 'notes'"),
        ({"retrieval": 5}, "retrieval: expected a mapping of keys (mode, k, candidates, min_relevance, link_boost)"),
        ({"retrieval": {1: 2}}, "retrieval.1: unknown key; allowed keys in retrieval: mode, k"),
        ({"adapter_cache": {"queue_timeout_s": -1}}, "adapter_cache.queue_timeout_s: -1 is below the minimum 0"),
        ({"engine": {"gpu_memory_utilization": 0}}, "engine.gpu_memory_utilization: 0 is below the minimum 0.05"),
        ({"engine": {"kind": "llamafile"}}, "engine.kind: 'llamafile' is not allowed; allowed values: transformers,"),
        ({"embedder": {"device": "tpu"}}, "embedder.device: 'tpu' is not allowed; allowed values: cpu, cuda, mps"),
    ],
)
def test_strict_types_and_one_line_messages(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_an_empty_section_or_file_means_the_defaults():
    assert parse_settings(None) == parse_settings({"retrieval": None}) == Settings()


def test_a_partial_section_is_checked_like_the_file():
    assert parse_section("engine", {"kind": "vllm"}) == EngineSettings(kind="vllm")
    with pytest.raises(ConfigError, match=r"^engine\.max_batch_size: 0 is below the minimum 1$"):
        parse_section("engine", {"max_batch_size": 0})


def test_config_error_lives_in_errors_and_roles_spec_errors_are_config_errors():
    from konsilium import errors
    from konsilium.roles.spec import RoleSpecError

    assert ConfigError is errors.ConfigError and issubclass(RoleSpecError, errors.ConfigError)
