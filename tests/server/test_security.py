"""API keys, binding rules and the body size limit, on a real server with the official client (over the fake
engine: nothing here depends on what the model says)."""

from __future__ import annotations

import httpx2
import openai
import pytest
from fake_engine import FakeEngine
from live_server import running_server

from konsilium.config import ServerSection
from konsilium.server import create_app
from konsilium.server.settings import API_KEY_ENV, ServerSettings, api_keys, check_bind, is_loopback

QUESTION = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def keyed_url():
    app = create_app(FakeEngine(), settings=ServerSettings(api_keys=("s3cret", "other-key")))
    with running_server(app) as url:
        yield url


@pytest.mark.parametrize("key", [None, "wrong", "s3cret "[:-2]])
def test_requests_without_the_right_key_get_401_in_openais_shape(keyed_url, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")]:
        response = httpx2.request(method, f"{keyed_url}{path}", headers=headers, json={}, timeout=30)
        assert response.status_code == 401, path
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["message"]


def test_the_official_client_works_with_either_key_and_reports_a_wrong_one(keyed_url):
    for key in ("s3cret", "other-key"):
        client = openai.OpenAI(base_url=f"{keyed_url}/v1", api_key=key, max_retries=0, timeout=60)
        assert client.models.list().data[0].id == "konsilium"
        answer = client.chat.completions.create(model="konsilium", messages=QUESTION, max_tokens=2, temperature=0)
        assert answer.choices[0].message.content is not None
    bad = openai.OpenAI(base_url=f"{keyed_url}/v1", api_key="nope", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.status_code == 401


def test_keys_come_from_the_config_and_the_environment():
    assert api_keys(["a", " ", "b"], {API_KEY_ENV: "c"}) == ("a", "b", "c")
    assert api_keys([], {}) == ()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_key(host):
    assert is_loopback(host)
    check_bind(host, 8000, ())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_other_addresses_need_a_key(host):
    with pytest.raises(ValueError, match=API_KEY_ENV):
        check_bind(host, 8000, ())
    check_bind(host, 8000, ("k",))


def test_bodies_over_the_limit_get_413_whether_declared_or_chunked():
    app = create_app(FakeEngine(), settings=ServerSettings(ServerSection(max_body_bytes=4096)))
    big = {"model": "konsilium", "messages": [{"role": "user", "content": "x" * 10_000}], "max_tokens": 1}
    with running_server(app) as url:
        declared = httpx2.post(f"{url}/v1/chat/completions", json=big, timeout=30)
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

        def pieces():
            for _ in range(10):
                yield b"x" * 1000

        chunked = httpx2.post(
            f"{url}/v1/chat/completions",
            content=pieces(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert chunked.status_code == 413 and "4,096 bytes" in chunked.json()["error"]["message"]
        small = httpx2.post(
            f"{url}/v1/chat/completions",
            json={"model": "konsilium", "messages": QUESTION, "max_tokens": 1},
            timeout=60,
        )
        assert small.status_code == 200
