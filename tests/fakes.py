"""Fakes for unit tests: no model loads, no network."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from rag.embedding import index_model_name
from rag.ingest import ingest
from rag.settings import Settings
from rag.text import content_terms

SEED = Path(__file__).resolve().parents[1] / "corpus" / "bhutan-qatar.md"


@functools.lru_cache(maxsize=1 << 13)  # at most ~64 MB of vectors
def _hashed_vector(text: str, dim: int) -> tuple[float, ...]:
    """HashingEmbedder's vector of ``text`` (a pure function: remembered, as many tests embed
    the same documents)."""
    v = [0.0] * dim
    for term in content_terms(text):
        h = int(hashlib.md5(term.encode()).hexdigest(), 16)
        v[h % dim] += 1.0 if (h >> 20) % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return tuple(x / norm for x in v)


class HashingEmbedder(Embeddings):
    """A lexical stand-in for the real embedder: hashed bag of stemmed content words,
    L2-normalised, so texts sharing words are similar. Deterministic and instant."""

    def __init__(self, dim: int = 256, model_name: str = "fake-hashing") -> None:
        self.dim = dim
        self._name = model_name

    @property
    def model_name(self) -> str:
        return self._name

    def _vec(self, text: str) -> list[float]:
        return list(_hashed_vector(text, self.dim))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


class FixedScorer:
    """A stand-in for the model's P(yes): ``p_yes`` for every verification question (so only
    the lexical stage can reject), except questions whose last message holds a key of
    ``overrides``. Counts the questions asked."""

    def __init__(self, p_yes: float = 0.9, overrides: dict[str, float] | None = None) -> None:
        self.score = p_yes
        self.overrides = overrides or {}
        self.calls = 0

    def p_yes(self, messages: list[dict[str, str]]) -> float:
        self.calls += 1
        last = messages[-1]["content"]
        return next((p for k, p in self.overrides.items() if k in last), self.score)

    def release(self) -> None:
        """Nothing to give back."""


def affiliation_reply(paragraph: int, tail: str = "") -> str:
    """A model's right reply to "Which institution is Dr. Tenzin Wangchuk affiliated with?":
    the seed's sentence quoted from the prompt's paragraph ``P<paragraph>``, then the answer
    (``tail`` after it)."""
    return (
        f'Quote [P{paragraph}]: "notes Dr. Tenzin Wangchuk, a specialist in Himalayan geopolitics '
        f'at the Kathmandu Policy Forum"\nAnswer: He is affiliated with the Kathmandu Policy '
        f"Forum.{tail}"
    )


def fake_verifier(p_yes: float = 0.9, overrides: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """The default cascade over a ``FixedScorer``."""
    from rag.verification import CascadeVerifier, LLMVerifier, Thresholds

    scorer = FixedScorer(p_yes, overrides)
    return CascadeVerifier(LLMVerifier(scorer, Thresholds(support=0.5, answer=0.5)))


def fake_embedder(s: Settings | None = None) -> HashingEmbedder:
    """The fake under the name of the settings' embedding model (an index built with it
    reads as built by that model)."""
    return HashingEmbedder(model_name=index_model_name((s or Settings()).embedding))


def use_fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest and retrieval build ``fake_embedder``: the CLI, API and UI run without models."""
    import rag.ingest  # noqa: F401  (``rag.ingest`` the attribute is the function: patch the modules)
    import rag.retrieval  # noqa: F401

    monkeypatch.setattr(sys.modules["rag.ingest"], "get_embedder", fake_embedder)
    monkeypatch.setattr(sys.modules["rag.retrieval"], "get_embedder", fake_embedder)


def clear_rag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``RAG_*`` variable of the shell running the tests reaches the settings."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


def seed_index(tmp: Path, db: Path) -> Settings:
    """The seed document alone (in ``tmp/corpus``), indexed in ``db`` with ``fake_embedder``."""
    corpus = tmp / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    s = Settings(corpus_dir=corpus, db_dir=db, data_dir=tmp / "data")
    ingest(s, embedder=fake_embedder(s))
    return s


def copy_built_index(built: Settings, to: Settings) -> None:
    """Copy the index of ``built`` (ingested once, its Chroma clients closed) to where ``to``
    keeps its index: the Chroma folder, its chunk index and the writer's lock file beside it.
    ``to``'s corpus must hold the same files as ``built``'s (copied with their times, as
    ``shutil.copytree`` does): the copy is then what ingesting that corpus would have left."""
    src, dst = built.index_dir, to.index_dir
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst)
    shutil.copytree(src.parent / f"{src.name}.bm25", dst.parent / f"{dst.name}.bm25")
    for lock in src.parent.glob(f".{src.name}.*.lock"):
        suffix = lock.name.removeprefix(f".{src.name}.")
        shutil.copy2(lock, dst.parent / f".{dst.name}.{suffix}")
    if built.data_dir.exists():
        shutil.copytree(built.data_dir, to.data_dir, dirs_exist_ok=True)


def copy_index(built: Settings, tmp: Path, db: Path) -> Settings:
    """What ``seed_index(tmp, db)`` leaves, copied from ``built`` (``seed_index`` run once)
    instead of ingested again: the corpus in ``tmp/corpus``, the index in ``db``."""
    shutil.copytree(built.corpus_dir, tmp / "corpus")
    s = Settings(corpus_dir=tmp / "corpus", db_dir=db, data_dir=tmp / "data")
    copy_built_index(built, s)
    return s
