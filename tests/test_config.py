import pytest
import yaml

from konsilium.config import ConfigError, defaults, open_home, validate


def test_first_use_creates_commented_defaults(tmp_path):
    home = open_home(tmp_path / "home")
    assert home.config_path.exists()
    assert yaml.safe_load(home.config_path.read_text()) == defaults()
    assert home.get("retrieval.mode") == "hybrid"


def test_user_values_override_defaults(tmp_path):
    (tmp_path / "konsilium.yaml").write_text("retrieval:\n  k: 3\nvault:\n  exclude: ['drafts/**']\n")
    home = open_home(tmp_path)
    assert home.get("retrieval.k") == 3
    assert home.get("vault.exclude") == ["drafts/**"]
    assert home.get("retrieval.mode") == "hybrid"


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
