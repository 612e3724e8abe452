"""Shared fixtures: real vaults from ../shared (read-only) and homes in tmp dirs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from shared_data import HELP_VAULT, SAMPLE_VAULT, SEED_QUESTIONS, SHARED, needs  # noqa: F401 - re-exported

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist each worker (and the konsilium processes it starts, which inherit the setting) gets its
    share of the cores for torch's threads. With torch's default of a thread per core, `make test`'s 2 workers on
    2 cores ran 4 busy threads that wait on one another: files on the real model or the embedder took 2-6× longer.
    OMP_NUM_THREADS set by the caller wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # imported before this file by a plugin: the variable is read at import
        sys.modules["torch"].set_num_threads(threads)


_share_the_cores_between_workers()
# The converted copy of the embedded GGUF model (engines/gguf_cache.py) is made by the first test that loads the
# model and read by every later one, subprocesses included; kept beside the repo's pytest cache, not in ~/.cache.
os.environ.setdefault("KONSILIUM_CACHE", str(Path(__file__).parent.parent / ".pytest_cache" / "konsilium"))

# Tests that run the real embedded model (SmolLM2-135M GGUF) carry the `real_model` marker: explicitly, or here by
# the fixtures that load it, or by module: every test of a module about the model itself (None), the tests using
# the module's fixture that loads it (a str), or the named tests (a tuple). `make test` runs them all;
# `pytest -m "not real_model"` is the fast tier, which never loads the model.
REAL_MODEL_FIXTURES = {"base_model", "embedded_upstream"}
REAL_MODEL_MODULES: dict[str, str | tuple[str, ...] | None] = {
    "engines/test_transformers_engine.py": None,
    "engines/test_batching.py": None,
    "engines/test_openai_upstream.py": None,
    "roles/test_stacking_and_slots.py": None,
    "grounding/test_context.py": "engine",
    "engines/test_gguf_cache.py": (
        "test_the_embedded_model_starts_from_its_copy_and_answers_exactly_as_from_the_gguf",
    ),
    "engines/test_factory.py": (
        "test_the_default_settings_give_the_embedded_engine",
        "test_batching_limits_come_from_the_engine_settings",
    ),
}


def _loads_the_real_model(item, tests_dir: Path) -> bool:
    if REAL_MODEL_FIXTURES & set(item.fixturenames):
        return True
    path = Path(item.fspath)
    if tests_dir not in path.parents:
        return False
    module = path.relative_to(tests_dir).as_posix()
    if module not in REAL_MODEL_MODULES:
        return False
    which = REAL_MODEL_MODULES[module]
    if which is None:
        return True
    if isinstance(which, str):
        return which in item.fixturenames
    return item.originalname in which


# The files that take longest (subprocesses importing torch, whole-vault indexing, the real model), started first:
# with a file per worker (make test's --dist loadfile), one of them picked up last would keep its worker busy
# long after the other has finished.
SLOWEST_FIRST = (
    "cli/test_serve_and_ask.py",
    "engines/test_gguf_cache.py",
    "index/test_indexing.py",
    "training/test_training_runs.py",
    "memory/test_memory_cli.py",
    "training/test_train_cli.py",
    "cli/test_cli.py",
    "index/test_mean_pooling.py",
    "benchmarks/test_gpu_training_script.py",
    "server/test_structured_output.py",
    "roles/test_stacking_and_slots.py",
    "roles/test_validation.py",
    "engines/test_batching.py",
    "index/test_live_index.py",
    "memory/test_memory_crash.py",
)


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).parent
    for item in items:
        if _loads_the_real_model(item, tests_dir):
            item.add_marker(pytest.mark.real_model)
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}

    def weight(item) -> int:
        path = Path(item.fspath)
        module = path.relative_to(tests_dir).as_posix() if tests_dir in path.parents else ""
        return rank.get(module, len(SLOWEST_FIRST))

    items.sort(key=weight)  # stable: the order inside a file, and of the other files, is kept


@pytest.fixture(scope="session")
def embedder():
    from konsilium.config import EmbedderSettings
    from konsilium.index.embedder import make_embedder

    return make_embedder(EmbedderSettings(), "default")  # the bundled MiniLM, as `embedder.model: default` gives it


@pytest.fixture
def vault_copy(tmp_path):
    """A writable copy of the sample vault (tests must never write into ../shared)."""

    def make(source: Path = SAMPLE_VAULT, name: str = "vault", limit: int | None = None) -> Path:
        """Copy `source`; with `limit`, only the first `limit` notes of each folder (embedding costs time)."""
        target = tmp_path / name
        if limit is None:
            shutil.copytree(source, target)
            return target
        for folder in sorted({p.parent for p in source.rglob("*.md")}):
            for note in sorted(folder.glob("*.md"))[:limit]:
                dest = target / note.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(note, dest)
        return target

    return make


STEPS = SAMPLE_VAULT / "0_chatgpt" / "AI" / "2025-06-29 - 1LTM_4"
STEP_NOTES = ("25_под_мою_видеокарта_как.md", "27_контекст_беседы_самой_какой.md", "08_поищи_это_про_n8n.md")


@pytest.fixture(scope="session")
def indexed_steps(tmp_path_factory):
    """Three real notes of the sample vault (under `steps/`), indexed once per session with the default (`auto`)
    embedder: (vault, home, report). Never write into it; `steps_home` gives a test a writable copy."""
    if not SAMPLE_VAULT.exists():
        pytest.skip(f"{SAMPLE_VAULT} is not here (../shared beside the repo)")
    from konsilium.config import open_home
    from konsilium.index.indexer import Indexer

    root = tmp_path_factory.mktemp("steps")
    vault = root / "vault"
    (vault / "steps").mkdir(parents=True)
    for name in STEP_NOTES:
        shutil.copy2(STEPS / name, vault / "steps" / name)
    report = Indexer(open_home(root / "home"), roots=[vault]).run([vault])
    return SimpleNamespace(vault=vault, home=root / "home", report=report)


@pytest.fixture
def steps_home(indexed_steps, tmp_path) -> Path:
    """A writable copy of `indexed_steps`' home (the index is reused, the log and settings are the test's own)."""
    return Path(shutil.copytree(indexed_steps.home, tmp_path / "steps-home"))


@pytest.fixture(scope="session")
def embedded_upstream():
    """A konsilium server on the embedded default model, to stand as an OpenAI-compatible upstream: (url, model)."""
    from live_server import running_server

    from konsilium.engines import load_embedded_default
    from konsilium.server import create_app

    model = "konsilium-upstream"
    with running_server(create_app(load_embedded_default(), model_id=model)) as url:
        yield SimpleNamespace(url=url, base_url=f"{url}/v1", model=model)
