"""Retrieval at scale: index a synthetic Obsidian-like corpus into LanceStore; measure speed, size, recall.

The corpus is deterministic (seeded): Russian and English notes built from word lists with Zipf-like
frequencies, per-topic vocabularies, technical terms, headings and [[links]] between notes. Embedding 1M
chunks with the real MiniLM would take hours on a laptop CPU, so the store is filled with vectors from a fast
stand-in embedder (a fixed random projection of our own stems, shaped by an anisotropic linear map so the
vectors cluster by topic like real sentence embeddings). The real embedder's throughput and single-query
latency are measured separately on a small sample, and the end-to-end indexing time is projected from both.

Each size runs in its own child process, so peak RSS (ru_maxrss) belongs to that size alone.

    python benchmarks/retrieval_scale.py --quick                      # smoke test, 2,000 chunks
    python benchmarks/retrieval_scale.py --chunks 10000 100000 --json-out bench.json
    python benchmarks/retrieval_scale.py --chunks 1000000 --sweep pq48 hnsw_sq --workdir /tmp/ks
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np

# Lance logs a deprecation warning per query (the store selects columns without _score/_distance): keep quiet.
for _var in ("LANCE_LOG", "LANCEDB_LOG", "RUST_LOG"):
    os.environ.setdefault(_var, "error")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.provenance import provenance  # noqa: E402
from konsilium.index import lance_store as lance_store_module  # noqa: E402
from konsilium.index.lance_store import LanceStore  # noqa: E402
from konsilium.index.retrieval import Retriever  # noqa: E402
from konsilium.index.store import ChunkRecord, NoteRecord  # noqa: E402
from konsilium.index.text import analyze, query_terms, terms_string  # noqa: E402

DIM = 384
COLLECTION = "bench"

# ----------------------------------------------------------------------------------------------------------
# Word lists
# ----------------------------------------------------------------------------------------------------------
RU_STOP = """
и в не что на я с как а то все она так его но да к у же вы за бы по только ее мне было вот от меня
еще нет о из ему теперь когда даже ну ли если уже или ни быть был него до вас опять уж вам там потом
себя может они тут где есть надо для мы их чем была сам без тоже себе под будет тогда кто этот того
потому этого какой здесь этом один почти тем чтобы сейчас были можно при после над больше тот через
эти нас про всего них много эту перед иногда лучше нельзя такой более всегда между это эта
""".split()

RU_WORDS = """
модель модели моделей моделью индекс индекса индексы индексом заметка заметки заметок заметку поиск
поиска поиском вектор векторы векторов векторами обучение обучения данные данных данными память
памяти запрос запроса запросы запросов ответ ответа ответы текст текста тексты текстов слово слова
слов документ документа документы система системы систем сервер сервера файл файла файлы файлов
настройка настройки настроек проблема проблемы решение решения вопрос вопроса вопросы работа работы
время времени день дня книга книги статья статьи статей идея идеи проект проекта проекты задача
задачи задач код кода функция функции ошибка ошибки ошибок тест тесты тестов результат результаты
результатов скорость скорости качество качества метод метода методы подход подхода граф графа ссылка
ссылки ссылок связь связи узел узла сеть сети слой слоя слоев вес веса весов параметр параметры
параметров контекст контекста окно окна токен токены токенов генерация генерации перевод перевода
язык языка языков русский русского английский английского большой большая большие большого новый
новая новые нового быстрый быстрая быстро медленный медленно локальный локальная локально приватный
открытый важный важно простой простая сложный сложная хороший хорошая плохой нужный полный первый
первая последний делать делает сделал работать работает работал искать ищет нашел читать читает
прочитал писать пишет написал запускать запускает запустил строить строит построил хранить хранит
загружать загружает загрузил проверять проверил сравнивать сравнил улучшать улучшил думать думаю
знать знаю понимать понял помнить использовать использует обучать обучил считать считает получать
получил отвечать ответил встреча встречи план плана планы неделя недели месяц месяца год года
человек люди команда команды клиент клиента продукт продукта рынок рынка цена цены деньги бюджет
отчет отчета итог итоги вывод выводы заметил заметили пример примера примеры список списка таблица
таблицы схема схемы архитектура архитектуры компонент компонента модуль модуля библиотека библиотеки
версия версии обновление обновления установка установки сборка сборки диск диска процессор
процессора ядро ядра поток потока очередь очереди кэш кэша буфер буфера сжатие сжатия шифрование
ключ ключа пароль доступ доступа права пользователь пользователя пользователи интерфейс интерфейса
команда терминал скрипт скрипта журнал журнала лог логи событие события сообщение сообщения письмо
письма чат чата разговор разговора вечер утро ночь дом дома город города дорога путь пути история
истории философия мысль мысли чувство опыт опыта привычка привычки здоровье сон спорт чтение музыка
фильм фильма
""".split()

EN_STOP = """
the of and to a in is it that for on was with as be by this are or not but from at which an have has
had they you we he she his her their there been were would will can if so what all about when more
do into than its our also one some may these only other such how no
""".split()

EN_WORDS = """
model models index indexes indexing note notes search searching searched vector vectors embedding
embeddings training train trained data dataset memory query queries answer answers text texts word
words document documents system systems server servers file files setting settings config
configuration problem problems solution solutions question questions work working time day book
books article articles idea ideas project projects task tasks code function functions error errors
bug bugs test tests testing result results speed quality method methods approach graph graphs link
links node nodes network layer layers weight weights parameter parameters context window token
tokens generation translation language languages russian english large small new fast slow local
private open important simple complex good bad full first last make makes made run runs running ran
build builds built store stored storing load loading loaded check checked compare compared improve
improved think know understand remember use uses used compute computed get got reply meeting
meetings plan plans week month year people team client customer product market price budget report
reports summary conclusion example examples list table schema architecture component module library
version update install disk processor core thread queue cache buffer compression encryption key
password access permission user users interface command terminal script log logs event events
message messages email chat conversation evening morning night home city road path history
philosophy thought feeling experience habit health sleep sport reading music movie benchmark latency
throughput recall precision ranking retrieval fusion score scores chunk chunks heading headings
title titles vault vaults backlink backlinks tag tags folder folders daily journal draft review
reviewed release deploy deployed pipeline batch batches partition partitions cluster clusters
centroid centroids distance similarity cosine dot product dimension dimensions
""".split()

TECH = """
LanceDB BM25 IVF_PQ IVF_HNSW_SQ HNSW qwen3-30b qwen2.5-7b llama-3.1-8b mistral-7b rope_theta kv-
cache PyTorch CUDA FAISS SQLite Obsidian Markdown MiniLM all-MiniLM-L6-v2 transformer tokenizer
quantization int8 fp16 bf16 GGUF llama.cpp vLLM LoRA QLoRA RAG reranker k-means SIMD AVX2 Rust
Python asyncio numpy pyarrow Parquet Arrow Docker systemd nginx PostgreSQL pgvector Qdrant Tantivy
Snowball PyStemmer sentence-transformers ONNX OpenVINO ARM64 x86_64 e5-small bge-m3 ColBERT SPLADE
top_k max_tokens num_partitions nprobes refine_factor ef_construction utf-8 cp1251 JSON YAML TOML
HTTP gRPC REST WebSocket
""".split()

_RU_SYL = [c + v for c in "бвгдзклмнпрстфхчшщж" for v in "аеиоуыя"]
_RU_END = [
    "ация",
    "ение",
    "ость",
    "ный",
    "ная",
    "ное",
    "ать",
    "ить",
    "ил",
    "ов",
    "ами",
    "ой",
    "ка",
    "ик",
    "ие",
    "а",
]
_EN_SYL = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["str", "pl", "tr", "gr", "sh", "th"]
_EN_END = ["tion", "ing", "er", "ed", "ly", "ness", "ment", "able", "s", "", "al", "ive", "ize"]


def _synthetic_words(rng: np.random.Generator, syllables, endings, count: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        n = int(rng.integers(2, 4))
        word = "".join(syllables[i] for i in rng.integers(0, len(syllables), n)) + endings[rng.integers(len(endings))]
        if word not in taken and len(word) >= 4:
            taken.add(word)
            out.append(word)
    return out


def _synthetic_tech(rng: np.random.Generator, count: int) -> list[str]:
    bases = [
        "qwen",
        "llama",
        "gemma",
        "phi",
        "mixtral",
        "deepseek",
        "yi",
        "olmo",
        "falcon",
        "bert",
        "t5",
        "gpt",
    ]
    suffixes = ["instruct", "chat", "base", "coder", "vision", "q4_k_m", "q8_0", "awq", "gptq"]
    out: set[str] = set()
    while len(out) < count:
        b = bases[rng.integers(len(bases))]
        ver = f"{rng.integers(1, 5)}.{rng.integers(0, 9)}" if rng.random() < 0.5 else str(rng.integers(1, 5))
        size = f"{int(rng.choice([1, 2, 3, 7, 8, 13, 14, 32, 34, 70, 72]))}b"
        word = f"{b}{ver}-{size}"
        if rng.random() < 0.5:
            word += "-" + suffixes[rng.integers(len(suffixes))]
        out.add(word)
    return sorted(out)


# ----------------------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------------------
class Corpus:
    """A deterministic stream of (NoteRecord, [ChunkRecord]) batches plus matching queries."""

    def __init__(self, seed: int = 7, topics: int = 400, ru_tail: int = 40_000, en_tail: int = 30_000):
        self.seed = seed
        rng = np.random.default_rng(seed)
        taken = set(RU_STOP + RU_WORDS + EN_STOP + EN_WORDS + [t.lower() for t in TECH])
        ru_tail_words = _synthetic_words(rng, _RU_SYL, _RU_END, ru_tail, taken)
        en_tail_words = _synthetic_words(rng, _EN_SYL, _EN_END, en_tail, taken)
        tech = list(dict.fromkeys(TECH + _synthetic_tech(rng, 2000)))
        ru_real = list(dict.fromkeys(RU_WORDS))
        en_real = list(dict.fromkeys(EN_WORDS))
        rng.shuffle(ru_real)
        rng.shuffle(en_real)
        # One vocabulary, three rank orders (Zipf by rank): stop words first, then real words, then the tail.
        vocab = list(dict.fromkeys(RU_STOP + ru_real + ru_tail_words + EN_STOP + en_real + en_tail_words + tech))
        index = {w: i for i, w in enumerate(vocab)}
        self.vocab = np.array(vocab, dtype=object)
        self.vocab_cap = np.array([w[:1].upper() + w[1:] for w in vocab], dtype=object)
        analyzed = [terms_string(w) for w in vocab]
        self.analyzed = np.array(analyzed, dtype=object)
        self.has_terms = np.array([bool(a) for a in analyzed])
        self.word_len = np.array([len(w) for w in vocab], dtype=np.float64)
        self.tech_ids = np.array([index[t] for t in tech])

        def zipf(words: list[str], s: float = 1.0):
            ids = np.array([index[w] for w in words])
            p = 1.0 / (np.arange(len(ids)) + 2.7) ** s
            return ids, np.cumsum(p / p.sum())

        self.lang = {
            "ru": zipf(list(dict.fromkeys(RU_STOP + ru_real + ru_tail_words))),
            "en": zipf(list(dict.fromkeys(EN_STOP + en_real + en_tail_words))),
        }
        # Topics: mid-frequency content words of both languages and a few technical terms.
        ru_content = np.array([index[w] for w in ru_real + ru_tail_words[:15000]])
        en_content = np.array([index[w] for w in en_real + en_tail_words[:12000]])
        self.topics = []
        for _ in range(topics):
            self.topics.append(
                {
                    "ru": rng.choice(ru_content, 40, replace=False),
                    "en": rng.choice(en_content, 40, replace=False),
                    "tech": rng.choice(self.tech_ids, 4, replace=False),
                }
            )
        # Average word length per language decides how many words make a ~1,200-char chunk.
        self.words_per_chunk = {}
        for lang, (ids, cdf) in self.lang.items():
            p = np.diff(np.concatenate([[0.0], cdf]))
            mean_len = 0.7 * float((self.word_len[ids] * p).sum()) + 0.3 * float(self.word_len[ids].mean())
            self.words_per_chunk[lang] = int(1150 / (mean_len + 1.1))

    # -- notes --------------------------------------------------------------------------------------------
    def _note_rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 1, i])

    def note_meta(self, i: int) -> dict:
        """Language, topic and title of note i: a pure function of i, so links may point to earlier notes."""
        rng = self._note_rng(i)
        lang = "ru" if rng.random() < 0.6 else "en"
        topic = int(rng.integers(len(self.topics)))
        t = self.topics[topic]
        n_title = int(rng.integers(2, 5))
        title_ids = list(rng.choice(t[lang], n_title, replace=False))
        if rng.random() < 0.3:
            title_ids.append(int(rng.choice(t["tech"])))
        title_ids = np.array(title_ids)
        words = self.vocab[title_ids].tolist()
        title = " ".join([words[0][:1].upper() + words[0][1:]] + words[1:])
        return {"rng": rng, "lang": lang, "topic": topic, "title": title, "title_ids": title_ids}

    def _sample_words(self, rng, lang: str, topic: int, n: int) -> np.ndarray:
        ids, cdf = self.lang[lang]
        out = ids[np.minimum(np.searchsorted(cdf, rng.random(n)), len(ids) - 1)]
        t = self.topics[topic]
        u = rng.random(n)
        topical = u < 0.25
        out[topical] = rng.choice(t[lang], int(topical.sum()))
        tech = (u >= 0.25) & (u < 0.28)
        if tech.any():
            local = rng.random(int(tech.sum())) < 0.7
            out[tech] = np.where(local, rng.choice(t["tech"], local.size), rng.choice(self.tech_ids, local.size))
        if lang == "ru":  # Russian prose borrows English technical words
            borrowed = (u >= 0.28) & (u < 0.31)
            out[borrowed] = rng.choice(t["en"], int(borrowed.sum()))
        return out

    def _render(self, rng, ids: np.ndarray) -> str:
        n = ids.size
        starts = np.zeros(n, dtype=bool)
        pos = 0
        while pos < n:
            starts[pos] = True
            pos += int(rng.integers(6, 17))
        ends = np.roll(starts, -1)
        ends[-1] = True
        toks = np.where(starts, self.vocab_cap[ids], self.vocab[ids])
        toks[ends] = toks[ends] + "."
        return " ".join(toks.tolist())

    def _terms(self, ids: np.ndarray) -> str:
        return " ".join(self.analyzed[ids[self.has_terms[ids]]].tolist())

    def note(self, i: int, embedder: StandInEmbedder):
        meta = self.note_meta(i)
        rng, lang, topic = meta["rng"], meta["lang"], meta["topic"]
        n_chunks = int(min(60, 1 + rng.geometric(0.22)))
        n_links = int(min(8, rng.poisson(1.6))) if i > 0 else 0
        targets = sorted({int(i * rng.random() ** 2) for _ in range(n_links)})
        link_metas = [self.note_meta(j) for j in targets]
        # Titles repeat across notes (as in real vaults); paths must not, or replace_notes would merge them.
        note_path = f"topic-{topic:03d}/n{i:07d}/{meta['title']}.md"
        key = f"/bench/vault::{note_path}"
        full = self.words_per_chunk[lang]
        chunks: list[ChunkRecord] = []
        id_lists: list[np.ndarray] = []
        link_at = rng.integers(0, n_chunks, len(link_metas)) if link_metas else []
        for c in range(n_chunks):
            n_words = full if c < n_chunks - 1 else int(rng.integers(max(8, full // 8), full + 1))
            ids = self._sample_words(rng, lang, topic, n_words)
            text = self._render(rng, ids)
            heading_ids = np.array([], dtype=ids.dtype)
            heading = ""
            if c > 0:
                heading_ids = rng.choice(self.topics[topic][lang], int(rng.integers(1, 4)), replace=False)
                hw = self.vocab[heading_ids].tolist()
                heading = " ".join([hw[0][:1].upper() + hw[0][1:]] + hw[1:])
            extra = [m for m, at in zip(link_metas, link_at, strict=True) if at == c]
            if extra:
                text += " " + " ".join(f"[[{m['title']}]]" for m in extra)
            all_ids = np.concatenate([meta["title_ids"], heading_ids, ids] + [m["title_ids"] for m in extra])
            id_lists.append(all_ids)
            chunks.append(
                ChunkRecord(
                    note_key=key,
                    note=note_path,
                    title=meta["title"],
                    heading=heading,
                    text=text,
                    terms=self._terms(all_ids),
                    text_hash=f"{zlib.crc32(text.encode()):08x}{i:08x}{c:04x}",
                    ordinal=c,
                    vector=None,
                )
            )
        vectors = embedder.embed_ids(id_lists)
        for chunk, vector in zip(chunks, vectors, strict=True):
            chunk.vector = vector
        record = NoteRecord(
            note_key=key,
            vault="/bench/vault",
            note=note_path,
            content_hash=f"{i:016x}",
            title=meta["title"],
            aliases=[],
            links=sorted({m["title"].lower() for m in link_metas}),
            chunks=len(chunks),
        )
        return record, chunks

    def batches(self, total_chunks: int, batch_chunks: int, embedder: StandInEmbedder):
        """Whole notes, about batch_chunks chunks per batch, until total_chunks (the last note is trimmed)."""
        i = produced = 0
        notes: list[NoteRecord] = []
        chunks: list[ChunkRecord] = []
        while produced < total_chunks:
            record, note_chunks = self.note(i, embedder)
            note_chunks = note_chunks[: total_chunks - produced]
            record.chunks = len(note_chunks)
            notes.append(record)
            chunks.extend(note_chunks)
            produced += len(note_chunks)
            i += 1
            if len(chunks) >= batch_chunks:
                yield notes, chunks
                notes, chunks = [], []
        if notes:
            yield notes, chunks

    # -- queries ------------------------------------------------------------------------------------------
    def queries(self, count: int, notes_available: int, seed: int) -> list[str]:
        """Short queries, half Russian half English: topic words, a technical term, sometimes a question."""
        rng = np.random.default_rng([self.seed, 2, seed])
        out = []
        for q in range(count):
            meta = self.note_meta(int(rng.integers(max(1, notes_available))))
            lang = "ru" if q % 2 == 0 else "en"
            t = self.topics[meta["topic"]]
            words = self.vocab[rng.choice(t[lang], int(rng.integers(2, 5)), replace=False)].tolist()
            if rng.random() < 0.4:
                words.append(str(self.vocab[rng.choice(t["tech"])]))
            if rng.random() < 0.3:
                words = (["как", "работает"] if lang == "ru" else ["how", "does"]) + words
            out.append(" ".join(words))
        return out


# ----------------------------------------------------------------------------------------------------------
# Stand-in embedder
# ----------------------------------------------------------------------------------------------------------
class StandInEmbedder:
    """Deterministic, fast, clustered vectors: each stem gets a fixed Gaussian vector (seeded by its crc32),
    a text is the sum over its stems mapped through a fixed anisotropic matrix (decaying spectrum, like real
    embedding spaces), unit-normalized. Texts sharing topic words end up close; frequent words give the common
    direction that makes unrelated texts mildly similar, as in MiniLM."""

    name = "standin-stemproj-384"
    dim = DIM

    def __init__(self, corpus: Corpus | None = None):
        rng = np.random.default_rng(12345)
        q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        spectrum = (1.0 + np.arange(DIM)) ** -0.6
        self.shape = (q * spectrum).astype(np.float32)  # rows: input dims; a linear map with decaying spectrum
        self._stems: dict[str, np.ndarray] = {}
        self.word_matrix = None
        if corpus is not None:
            rows = np.zeros((len(corpus.vocab), DIM), dtype=np.float32)
            for i, a in enumerate(corpus.analyzed.tolist()):
                for s in a.split():
                    if s[:2] not in ("l_", "r_"):  # sound keys are for BM25 only, as embed() sees stems
                        rows[i] += self._stem_vec(s)
            self.word_matrix = rows @ self.shape

    def _stem_vec(self, stem: str) -> np.ndarray:
        v = self._stems.get(stem)
        if v is None:
            v = np.random.default_rng(zlib.crc32(stem.encode("utf-8"))).standard_normal(DIM).astype(np.float32)
            self._stems[stem] = v
        return v

    @staticmethod
    def _normalize(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return (m / np.maximum(norms, 1e-9)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for s in analyze(text):
                out[i] += self._stem_vec(s)
        return self._normalize(out @ self.shape)

    def embed_ids(self, id_lists: list[np.ndarray]) -> np.ndarray:
        """The same vectors as embed() on the rendered text, computed from vocabulary ids (bulk path)."""
        return self._normalize(np.stack([self.word_matrix[ids].sum(axis=0) for ids in id_lists]))


# ----------------------------------------------------------------------------------------------------------
# Measuring helpers
# ----------------------------------------------------------------------------------------------------------
def _pct(values: list[float]) -> dict:
    if not values:
        return {}
    a = np.array(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "max_ms": round(float(a.max()), 2),
        "n": len(values),
    }


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


class _PhaseTimer:
    """Wraps a LanceTable's create_index/optimize on the instance to split finish() into phases."""

    def __init__(self, table):
        self.phases: dict[str, float] = {}
        self.table = table
        self._create = table.create_index
        self._optimize = table.optimize
        table.create_index = self.create_index
        table.optimize = self.optimize

    def _add(self, name: str, seconds: float) -> None:
        self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 3)

    def create_index(self, *args, **kwargs):
        column = args[0] if args else kwargs.get("column", "vector")
        name = {"terms": "fts_index_s", "vector": "vector_index_s"}.get(column, "scalar_index_s")
        result, s = _timed(self._create, *args, **kwargs)
        self._add(name, s)
        return result

    def optimize(self, *args, **kwargs):
        result, s = _timed(self._optimize, *args, **kwargs)
        self._add("optimize_s", s)
        return result

    def restore(self) -> None:
        del self.table.create_index
        del self.table.optimize


def _store_bytes(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file() and ".lance" in str(p))


def _row_keys(table) -> list[tuple[str, int]]:
    return list(zip(table["note_key"].to_pylist(), table["ordinal"].to_pylist(), strict=True))


def _dense_query(store: LanceStore, vector, limit: int, *, exact=False, nprobes=None, refine=None, ef=None):
    q = store.chunks.search(vector.astype(np.float32), vector_column_name="vector").distance_type("dot")
    if exact:
        q = q.bypass_vector_index()
    else:
        if nprobes is not None:
            q = q.nprobes(nprobes)
        if refine is not None:
            q = q.refine_factor(refine)
        if ef is not None:
            q = q.ef(ef)
    return q.select(["note_key", "ordinal"]).limit(limit).to_arrow()


def _ann_grid(store, vectors, exact_top, settings, limit: int) -> list[dict]:
    """Recall@10 (of ANN's top 10 among `limit` asked, as the Retriever asks) and latency per setting."""
    rows = []
    for s in settings:
        _dense_query(store, vectors[0], limit, **s)  # warm this setting's code path
        times, recalls = [], []
        for v, truth in zip(vectors, exact_top, strict=True):
            table, secs = _timed(_dense_query, store, v, limit, **s)
            times.append(secs)
            got = set(_row_keys(table)[:10])
            recalls.append(len(got & truth) / max(1, len(truth)))
        rows.append({**{k: v for k, v in s.items()}, "recall_at_10": round(float(np.mean(recalls)), 4), **_pct(times)})
    return rows


SWEEP_CONFIGS = {
    # name: (create_index kwargs builder given rows, list of query settings)
    "pq48": (
        lambda n: dict(index_type="IVF_PQ", num_partitions=max(16, int(n**0.5)), num_sub_vectors=DIM // 8),
        [
            dict(nprobes=24, refine=4),
            dict(nprobes=24, refine=10),
            dict(nprobes=48, refine=10),
            dict(nprobes=96, refine=20),
        ],
    ),
    "pq96": (
        lambda n: dict(index_type="IVF_PQ", num_partitions=max(16, int(n**0.5)), num_sub_vectors=DIM // 4),
        [dict(nprobes=24, refine=4), dict(nprobes=48, refine=4), dict(nprobes=48, refine=10)],
    ),
    "pq48_fewparts": (
        lambda n: dict(index_type="IVF_PQ", num_partitions=max(16, n // 4096), num_sub_vectors=DIM // 8),
        [dict(nprobes=8, refine=10), dict(nprobes=16, refine=10), dict(nprobes=32, refine=10)],
    ),
    "hnsw_sq": (
        lambda n: dict(index_type="IVF_HNSW_SQ", num_partitions=max(1, n // 250_000), m=16, ef_construction=150),
        [dict(nprobes=1, ef=64), dict(nprobes=2, ef=100), dict(nprobes=4, ef=150), dict(nprobes=4, ef=300)],
    ),
    "ivf_sq": (
        lambda n: dict(index_type="IVF_SQ", num_partitions=max(16, int(n**0.5))),
        [dict(nprobes=24), dict(nprobes=48), dict(nprobes=24, refine=4)],
    ),
    "rq": (
        lambda n: dict(index_type="IVF_RQ", num_partitions=max(16, int(n**0.5))),
        [dict(nprobes=24), dict(nprobes=24, refine=4), dict(nprobes=48, refine=4)],
    ),
}


def _build(args, size: int, corpus: Corpus, embedder: StandInEmbedder, index_dir: Path, result: dict) -> LanceStore:
    """Write the corpus into a fresh store and finish it; the build figures go into `result`."""
    shutil.rmtree(index_dir, ignore_errors=True)
    store = LanceStore(index_dir, COLLECTION, embedder.name, DIM)

    # -- write ----------------------------------------------------------------------------------------------
    gen_s = write_s = 0.0
    batch_times: list[float] = []
    notes_written = chunks_written = 0
    verify = args.verify
    it = corpus.batches(size, args.batch_chunks, embedder)
    last_report = time.perf_counter()
    while True:
        t = time.perf_counter()
        try:
            notes, chunks = next(it)
        except StopIteration:
            break
        gen_s += time.perf_counter() - t
        if verify:
            _verify(corpus, embedder, chunks[: min(len(chunks), 200)])
            verify = False
        _, s = _timed(store.replace_notes, notes, chunks)
        write_s += s
        batch_times.append(s)
        notes_written += len(notes)
        chunks_written += len(chunks)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            _log(f"[{size}] wrote {chunks_written} chunks, gen {gen_s:.0f}s write {write_s:.0f}s rss {_rss_mb()}MB")
    result.update(
        chunks=chunks_written,
        notes=notes_written,
        generate_s=round(gen_s, 2),
        write_s=round(write_s, 2),
        write_chunks_per_s=round(chunks_written / max(write_s, 1e-9), 1),
        batches=len(batch_times),
        batch_ms_first10=round(1000 * float(np.mean(batch_times[:10])), 1),
        batch_ms_last10=round(1000 * float(np.mean(batch_times[-10:])), 1),
    )
    _log(f"[{size}] written: {chunks_written} chunks in {write_s:.1f}s (+{gen_s:.1f}s generation); finishing")

    # -- finish ---------------------------------------------------------------------------------------------
    timer = _PhaseTimer(store.chunks)
    _, finish_s = _timed(store.finish)
    timer.restore()
    result["finish_s"] = round(finish_s, 2)
    result["finish_phases"] = timer.phases
    result["index_chunks_per_s"] = round(chunks_written / (write_s + finish_s), 1)
    result["indices"] = sorted(i.name for i in store.chunks.list_indices())
    _log(f"[{size}] finish {finish_s:.1f}s {timer.phases}")

    try:
        stats, stats_s = _timed(store.stats)
        result["stats_s"] = round(stats_s, 2)
        b = stats["bytes"]
    except Exception as exc:  # noqa: BLE001 - the store module is being edited; keep measuring disk use
        result["stats_error"] = str(exc)[:300]
        b = {"on_disk": _store_bytes(index_dir)}
    result["bytes"] = b
    result["disk_bytes_per_chunk"] = round(b["on_disk"] / max(1, chunks_written), 1)
    # finish() keeps 5 minutes of old versions for concurrent readers; measure the settled size too.
    try:
        store.chunks.optimize(cleanup_older_than=timedelta(0))
        store.notes_table.optimize(cleanup_older_than=timedelta(0))
        settled = _store_bytes(index_dir)
        result["disk_bytes_per_chunk_settled"] = round(settled / max(1, chunks_written), 1)
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        result["cleanup_error"] = str(exc)

    return store


class _Timed:
    """A store or embedder whose named methods record their last duration in a shared dict (seconds)."""

    def __init__(self, inner, names: tuple[str, ...], times: dict[str, float]):
        self._inner, self._names, self._times = inner, names, times

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        if name not in self._names:
            return value

        def timed(*args, **kwargs):
            result, s = _timed(value, *args, **kwargs)
            self._times[name] = s
            return result

        return timed


class _StageRetriever(Retriever):
    """The real Retriever with each stage of a query timed: the store calls (BM25 in the pool thread, dense in the
    caller's), the query embedding, the candidate phase as the caller waits for it, and fusion with ranking."""

    def __init__(self, store, embedder):
        self.times: dict[str, float] = {}
        names = ("search_bm25", "search_dense", "complete_chunks")
        super().__init__(_Timed(store, names, self.times), _Timed(embedder, ("embed",), self.times))

    def _candidates(self, *args):
        result, self.times["candidates"] = _timed(super()._candidates, *args)
        return result

    def _rank(self, *args):
        result, self.times["fusion"] = _timed(super()._rank, *args)
        return result

    def stages(self, query: str) -> dict[str, float]:
        self.times.clear()
        _, total = _timed(self.search, query, 10, "hybrid")
        t = self.times
        return {
            "total": total,
            "bm25": t["search_bm25"],
            "embed": t["embed"],
            "dense": t["search_dense"],
            "candidates": t["candidates"],
            # What running BM25 beside embed + dense saved: their sum minus the wait for both.
            "overlap_saved": t["search_bm25"] + t["embed"] + t["search_dense"] - t["candidates"],
            "fusion": t["fusion"] - t.get("complete_chunks", 0.0),
            # Note, title and heading of the hits returned, read after ranking (LanceStore.complete_chunks).
            "display_fields": t.get("complete_chunks", 0.0),
            "other": total - t["candidates"] - t["fusion"],
        }


BUILD_KEYS = (
    "chunks notes generate_s write_s write_chunks_per_s batches batch_ms_first10 batch_ms_last10 finish_s "
    "finish_phases index_chunks_per_s indices stats_s bytes disk_bytes_per_chunk disk_bytes_per_chunk_settled"
).split()


def _reused_build(report_path: str, size: int) -> dict:
    """The build figures of `size` from an earlier report whose stores were kept (--keep)."""
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    built = next(r for r in report["sizes"] if r.get("chunks_requested") == size and "error" not in r)
    figures = {k: built[k] for k in BUILD_KEYS if k in built}
    return {**figures, "build_from": report_path, "build_loadavg_start": built.get("loadavg_start")}


# ----------------------------------------------------------------------------------------------------------
# One size (child process)
# ----------------------------------------------------------------------------------------------------------
def run_size(args) -> dict:
    size = args.size
    result: dict = {
        "chunks_requested": size,
        "batch_chunks": args.batch_chunks,
        "loadavg_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    corpus = Corpus(seed=args.seed)
    embedder = StandInEmbedder(corpus)
    result["setup_s"] = round(time.perf_counter() - t0, 2)

    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="konsilium-bench-"))
    index_dir = base / f"chunks-{size}"
    if args.reuse:
        result.update(_reused_build(args.reuse, size))
        store = LanceStore(index_dir, COLLECTION, embedder.name, DIM)
        if store.count_chunks() != result["chunks"]:
            raise SystemExit(f"{index_dir}: {store.count_chunks()} chunks, the report built {result['chunks']}")
    else:
        store = _build(args, size, corpus, embedder, index_dir, result)
    notes_written, chunks_written = result["notes"], result["chunks"]

    # -- queries --------------------------------------------------------------------------------------------
    queries = corpus.queries(args.queries, notes_written, seed=1)
    retriever = Retriever(store, embedder)
    latency: dict = {}
    cold: dict = {}
    result["loadavg_queries"] = os.getloadavg()
    for mode in ("bm25", "dense", "hybrid"):
        _, cold_s = _timed(retriever.search, queries[-1], 10, mode)
        cold[mode] = round(cold_s * 1000, 1)
        times = []
        for q in queries:
            _, s = _timed(retriever.search, q, 10, mode)
            times.append(s)
        latency[mode] = _pct(times)
    result["first_query_ms"] = cold
    result["latency"] = latency
    # Where a hybrid query's time goes, stage by stage through the real Retriever (a second pass, same queries).
    staged = _StageRetriever(store, embedder)
    stages = [staged.stages(q) for q in queries]
    result["hybrid_stages"] = {k: _pct([st[k] for st in stages]) for k in stages[0]}
    # The store calls alone, one after the other, as the Retriever asks (limit 60, the columns ranking reads).
    pool = retriever.candidates
    qvecs = embedder.embed(queries)
    parts = {"store_bm25": [], "store_dense": [], "terms_string": [], "standin_embed": []}
    for q, v in zip(queries, qvecs, strict=True):
        terms, s = _timed(query_terms, q)
        parts["terms_string"].append(s)
        parts["store_bm25"].append(_timed(store.search_bm25, terms, pool, complete=False)[1])
        parts["store_dense"].append(_timed(store.search_dense, v, pool, complete=False)[1])
        parts["standin_embed"].append(_timed(embedder.embed, [q])[1])
    result["breakdown"] = {k: _pct(v) for k, v in parts.items()}
    hits = [len(retriever.search(q, 10, "bm25")) for q in queries[:20]]
    result["bm25_hits_avg_first20"] = round(float(np.mean(hits)), 1)
    _log(f"[{size}] latency {json.dumps(latency)}")

    # -- dense recall vs exact ------------------------------------------------------------------------------
    rq = qvecs[: args.recall_queries]
    exact_times, exact_top = [], []
    for v in rq:
        table, s = _timed(_dense_query, store, v, 10, exact=True)
        exact_times.append(s)
        exact_top.append(set(_row_keys(table)))
    result["exact_dense_latency"] = _pct(exact_times)
    has_vector_index = "vector_idx" in result["indices"]
    result["has_vector_index"] = has_vector_index
    # Recall of what the Retriever gets: the store's dense search with its own settings (nprobes, refine).
    found = [{(c.note_key, c.ordinal) for c in store.search_dense(v, pool)[:10]} for v in rq]
    result["dense_recall_at_10"] = round(
        float(np.mean([len(f & t) / max(1, len(t)) for f, t in zip(found, exact_top, strict=True)])), 4
    )
    if has_vector_index:  # the setting the 2026-11 1M report measured, for comparison
        result["dense_recall_nprobes24"] = _ann_grid(store, rq, exact_top, [dict(nprobes=24, refine=4)], pool)[0]
    _log(f"[{size}] dense recall@10 {result['dense_recall_at_10']}")

    # -- vector index sweep ---------------------------------------------------------------------------------
    sweep = []
    if args.sweep and chunks_written >= args.sweep_min:
        for name in args.sweep:
            build, settings = SWEEP_CONFIGS[name]
            kwargs = build(chunks_written)
            try:
                _, build_s = _timed(
                    store.chunks.create_index,
                    metric="dot",
                    vector_column_name="vector",
                    replace=True,
                    name="vector_idx",
                    **kwargs,
                )
            except Exception as exc:  # noqa: BLE001 - report and go on with the next config
                sweep.append({"config": name, "params": kwargs, "error": str(exc)[:300]})
                continue
            sizes = {i.name: getattr(i, "size_bytes", 0) for i in store.chunks.list_indices()}
            grid = _ann_grid(store, rq, exact_top, settings, pool)
            # Hybrid p95 with this index at its store default query (nprobes=24, refine=4) for reference.
            hy = [_timed(retriever.search, q, 10, "hybrid")[1] for q in queries[:100]]
            sweep.append(
                {
                    "config": name,
                    "params": kwargs,
                    "build_s": round(build_s, 2),
                    "index_bytes": sizes.get("vector_idx"),
                    "grid": grid,
                    "hybrid_store_default": _pct(hy),
                }
            )
            _log(f"[{size}] sweep {name}: build {build_s:.1f}s grid {json.dumps(grid)}")
    result["sweep"] = sweep
    result["peak_rss_mb"] = _rss_mb()
    result["loadavg_end"] = os.getloadavg()
    result["total_s"] = round(time.perf_counter() - t0, 1)
    if not args.keep:
        shutil.rmtree(index_dir if args.workdir else base, ignore_errors=True)
    return result


def _bag(terms: str) -> tuple[list[str], set[str]]:
    """Stems in order and the set of sound keys: BM25 sees the same document either way."""
    tokens = terms.split()
    return [t for t in tokens if t[:2] not in ("l_", "r_")], {t for t in tokens if t[:2] in ("l_", "r_")}


def _verify(corpus: Corpus, embedder: StandInEmbedder, chunks: list[ChunkRecord]) -> None:
    """The fast paths must equal the real analyzer and the stand-in's text path."""
    texts = [f"{c.title} — {c.heading}\n{c.text}" if c.heading else f"{c.title}\n{c.text}" for c in chunks]
    slow = embedder.embed(texts)
    for c, v in zip(chunks, slow, strict=True):
        expected = terms_string(f"{c.title}\n{c.heading}\n{c.text}")
        if _bag(c.terms) != _bag(expected):
            raise AssertionError(f"terms differ for {c.note}#{c.ordinal}:\n{c.terms[:200]}\n{expected[:200]}")
        if float(np.dot(c.vector, v)) < 0.9999:
            raise AssertionError(f"stand-in bulk vector differs for {c.note}#{c.ordinal}")


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Real embedder (child process)
# ----------------------------------------------------------------------------------------------------------
def run_embedder(args) -> dict:
    from konsilium.index.embedder import SentenceTransformerEmbedder

    corpus = Corpus(seed=args.seed)
    standin = StandInEmbedder(corpus)
    chunks: list[ChunkRecord] = []
    for _, batch in corpus.batches(args.embed_sample, args.embed_sample, standin):
        chunks.extend(batch)
    texts = [f"{c.title} — {c.heading}\n{c.text}" if c.heading else f"{c.title}\n{c.text}" for c in chunks]
    emb = SentenceTransformerEmbedder()
    _, load_s = _timed(lambda: emb.dim)
    emb.embed(texts[:32])  # warm-up
    _, s = _timed(emb.embed, texts)
    queries = corpus.queries(50, 1000, seed=3)
    emb.embed(queries[:2])
    q_times = [_timed(emb.embed, [q])[1] for q in queries]
    import torch

    return {
        "model": emb.name,
        "sample_chunks": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "load_s": round(load_s, 2),
        "embed_s": round(s, 2),
        "chunks_per_s": round(len(texts) / s, 1),
        "query_embed": _pct(q_times),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": _rss_mb(),
        "loadavg": os.getloadavg(),
    }


# ----------------------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------------------
def _child(argv: list[str], label: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--child-out", out]
    proc = subprocess.run(cmd)
    try:
        if proc.returncode != 0:
            return {"error": f"{label}: child exited {proc.returncode}"}
        return json.loads(Path(out).read_text(encoding="utf-8"))
    finally:
        os.unlink(out)


def _fmt_int(n) -> str:
    return f"{n:,}" if isinstance(n, int | float) else str(n)


def print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, width=220)
    emb = report.get("embedder") or {}
    t = Table(title="konsilium retrieval at scale (stand-in vectors; latencies over the query set, warm)")
    for col in [
        "chunks",
        "notes",
        "write ch/s",
        "finish s (fts/vec/opt)",
        "index ch/s",
        "B/chunk disk",
        "RSS MB",
        "graph warmup ms",
        "bm25 p50/p95",
        "dense p50/p95",
        "hybrid p50/p95",
        "recall@10",
        "exact dense p50",
    ]:
        t.add_column(col, justify="right")
    for r in report["sizes"]:
        if "error" in r:
            t.add_row(str(r.get("chunks_requested")), r["error"], *[""] * 11)
            continue
        ph = r["finish_phases"]
        lat = r["latency"]
        t.add_row(
            _fmt_int(r["chunks"]),
            _fmt_int(r["notes"]),
            _fmt_int(r["write_chunks_per_s"]),
            f"{r['finish_s']:.1f} ({ph.get('fts_index_s', 0):.1f}/{ph.get('vector_index_s', 0):.1f}/"
            f"{ph.get('optimize_s', 0):.1f})",
            _fmt_int(r["index_chunks_per_s"]),
            f"{r['disk_bytes_per_chunk']:,.0f} ({r.get('disk_bytes_per_chunk_settled', 0):,.0f})",
            f"{r['peak_rss_mb']:,.0f}",
            f"{r.get('link_graph_warmup_ms', 0):,.0f}",  # the link graph was dropped (issue 9); old results
            *(f"{lat[m]['p50_ms']:.1f}/{lat[m]['p95_ms']:.1f}" for m in ("bm25", "dense", "hybrid")),
            f"{r['dense_recall_at_10']:.3f}",
            f"{r['exact_dense_latency']['p50_ms']:.1f}",
        )
    console.print(t)
    st = Table(
        title="where a hybrid query's time goes, ms p50/p95 (stages of Retriever.search, BM25 beside embed + dense)"
    )
    stage_cols = ["total", "bm25", "embed", "dense", "candidates", "overlap_saved", "fusion", "display_fields", "other"]
    for col in ["chunks", *stage_cols]:
        st.add_column(col, justify="right")
    for r in report["sizes"]:
        if "hybrid_stages" in r:
            hs = r["hybrid_stages"]
            st.add_row(_fmt_int(r["chunks"]), *(f"{hs[k]['p50_ms']:.2f}/{hs[k]['p95_ms']:.2f}" for k in stage_cols))
    console.print(st)
    b = Table(
        title="store calls alone, one after the other, ms p50/p95 (limit 60, ranking columns, as the Retriever asks)"
    )
    parts = ["terms_string", "store_bm25", "store_dense", "standin_embed"]
    for col in ["chunks", *parts, "first query ms", "load (queries)"]:
        b.add_column(col, justify="right")
    for r in report["sizes"]:
        if "error" in r:
            continue
        br = r["breakdown"]
        cells = [f"{br[k]['p50_ms']:.2f}/{br[k]['p95_ms']:.2f}" if k in br else "" for k in parts]
        load = " ".join(f"{x:.2f}" for x in r.get("loadavg_queries", []))
        b.add_row(_fmt_int(r["chunks"]), *cells, json.dumps(r["first_query_ms"]), load)
    console.print(b)
    sweeps = [(r["chunks"], s) for r in report["sizes"] if "error" not in r for s in r.get("sweep", [])]
    if sweeps:
        s_t = Table(title="vector index sweep: dense recall@10 vs exact, latency at limit 60")
        for col in [
            "chunks",
            "index",
            "params",
            "build s",
            "index MB",
            "query",
            "recall@10",
            "p50 ms",
            "p95 ms",
            "hybrid p95 (nprobes 24, refine 4)",
        ]:
            s_t.add_column(col, justify="right")
        for n, s in sweeps:
            if "error" in s:
                s_t.add_row(_fmt_int(n), s["config"], json.dumps(s["params"]), "error", s["error"][:60], *[""] * 5)
                continue
            params = {k: v for k, v in s["params"].items() if k != "index_type"}
            for i, g in enumerate(s["grid"]):
                q = ", ".join(f"{k}={v}" for k, v in g.items() if k in ("nprobes", "refine", "ef"))
                s_t.add_row(
                    _fmt_int(n) if i == 0 else "",
                    s["config"] if i == 0 else "",
                    json.dumps(params) if i == 0 else "",
                    f"{s['build_s']:.1f}" if i == 0 else "",
                    f"{(s['index_bytes'] or 0) / 1e6:.1f}" if i == 0 else "",
                    q,
                    f"{g['recall_at_10']:.3f}",
                    f"{g['p50_ms']:.1f}",
                    f"{g['p95_ms']:.1f}",
                    f"{s['hybrid_store_default']['p95_ms']:.1f}" if i == 0 else "",
                )
        console.print(s_t)
    if emb and "error" not in emb:
        console.print(
            f"[bold]real embedder[/bold] {emb['model']}: {emb['chunks_per_s']} chunks/s "
            f"on {emb['sample_chunks']} "
            f"chunks (~{emb['mean_chars']:.0f} chars, {emb['torch_threads']} torch threads), "
            f"load {emb['load_s']} s; "
            f"single-query embed p50/p95 {emb['query_embed']['p50_ms']}/{emb['query_embed']['p95_ms']} ms"
        )
        for r in report["sizes"]:
            if "projected_end_to_end_s" in r:
                console.print(
                    f"  projected first index of {r['chunks']:,} chunks: "
                    f"{r['projected_end_to_end_s'] / 3600:.2f} h "
                    f"(embedding {r['chunks'] / emb['chunks_per_s'] / 3600:.2f} h + store/finish "
                    f"{(r['write_s'] + r['finish_s']) / 60:.1f} min); projected hybrid p95 with real query "
                    f"embedding ≈ {r['projected_hybrid_p95_ms']:.1f} ms"
                )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, nargs="+", default=[10_000], help="corpus sizes to run, in chunks")
    p.add_argument("--quick", action="store_true", help="smoke test: 2,000 chunks, few queries, small embed sample")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", help="where the stores go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the stores after measuring")
    p.add_argument(
        "--reuse",
        metavar="REPORT",
        help="measure queries on the stores an earlier --keep run left in --workdir; build figures from its JSON",
    )
    p.add_argument("--batch-chunks", type=int, default=2000, help="chunks per replace_notes call")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--recall-queries", type=int, default=50)
    p.add_argument("--embed-sample", type=int, default=512, help="chunks for the real embedder's throughput")
    p.add_argument("--no-embedder", action="store_true", help="skip the real embedder measurement")
    p.add_argument(
        "--sweep",
        nargs="*",
        choices=sorted(SWEEP_CONFIGS),
        default=[],
        help="vector index configs to try after the main measurements",
    )
    p.add_argument("--sweep-min", type=int, default=50_000, help="only sweep sizes with at least this many chunks")
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the generator's fast terms/vector paths against the real analyzer on one batch",
    )
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    p.add_argument("--json-out", help="write the JSON report to this file")
    # internal
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--embed-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reuse and not args.workdir:
        p.error("--reuse needs the --workdir the stores were kept in")
    if args.quick:
        args.chunks = [2000]
        args.queries = min(args.queries, 40)
        args.recall_queries = min(args.recall_queries, 20)
        args.embed_sample = min(args.embed_sample, 64)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_out:
        result = run_embedder(args) if args.embed_child else run_size(args)
        Path(args.child_out).write_text(json.dumps(result), encoding="utf-8")
        return 0
    common = [
        "--seed",
        str(args.seed),
        "--batch-chunks",
        str(args.batch_chunks),
        "--queries",
        str(args.queries),
        "--recall-queries",
        str(args.recall_queries),
        "--sweep-min",
        str(args.sweep_min),
    ]
    if args.workdir:
        common += ["--workdir", args.workdir]
    if args.keep or args.reuse:
        common.append("--keep")
    if args.reuse:
        common += ["--reuse", str(Path(args.reuse).resolve())]
    if args.sweep:
        common += ["--sweep", *args.sweep]
    if not args.verify:
        common.append("--no-verify")
    report: dict = {
        "provenance": provenance(),
        "argv": sys.argv[1:],
        "cpu_count": os.cpu_count(),
        "vector_index_min_rows": lance_store_module.VECTOR_INDEX_MIN_ROWS,
        "sizes": [],
    }
    try:
        import lancedb

        report["lancedb"] = lancedb.__version__
    except Exception:  # noqa: BLE001
        pass
    if not args.no_embedder:
        _log(f"real embedder on {args.embed_sample} chunks")
        report["embedder"] = _child(
            ["--embed-child", "--seed", str(args.seed), "--embed-sample", str(args.embed_sample)], "embedder"
        )
    for size in args.chunks:
        _log(f"size {size}")
        r = _child(["--size", str(size), *common], f"size {size}")
        emb = report.get("embedder") or {}
        if "error" not in r and emb.get("chunks_per_s"):
            r["projected_end_to_end_s"] = round(r["chunks"] / emb["chunks_per_s"] + r["write_s"] + r["finish_s"], 1)
            r["projected_hybrid_p95_ms"] = round(
                r["latency"]["hybrid"]["p95_ms"]
                - r["breakdown"]["standin_embed"]["p50_ms"]
                + emb["query_embed"]["p95_ms"],
                1,
            )
        report["sizes"].append(r)
        if args.json_out:  # after every size, so a long run leaves what it reached
            Path(args.json_out).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print_tables(report)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    return 1 if any("error" in r for r in report["sizes"]) else 0


if __name__ == "__main__":
    sys.exit(main())
