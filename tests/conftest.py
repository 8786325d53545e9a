"""Shared fixtures.

Unit tests (tests/unit) use fakes and a throwaway Chroma folder. Integration tests
(tests/integration, marker ``integration``) use the real models built by the production
factories, and one session-wide index of the real ``corpus/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import Settings
from tests.fakes import HashingEmbedder
from tests.paths import settings_in

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"
SQUAD_DEV = SHARED / "data" / "squad-v2-dev" / "dev-v2.0.json"


@pytest.fixture(autouse=True)
def _close_chroma_clients(tmp_path: Path) -> Iterator[None]:
    """Close the Chroma clients a test opened on indexes in its own tmp folder: the library
    caches one per index for the life of the process, and each keeps its files open (the
    suite otherwise ended with ~1,700 open descriptors)."""
    yield
    from rag.store import close_clients

    close_clients(under=tmp_path)


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    """Settings pointing at a copy of the real corpus and an empty index in tmp_path."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    return settings_in(tmp_path, corpus)


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def seed_built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """``tests.fakes.seed_index`` run once: tests copy it (``tests.fakes.copy_index``) instead
    of ingesting the seed document again. Never modified; its Chroma clients are closed."""
    from rag.store import close_clients
    from tests.fakes import clear_rag_env, seed_index

    base = tmp_path_factory.mktemp("seed")
    with pytest.MonkeyPatch.context() as mp:
        clear_rag_env(mp)
        built = seed_index(base, base / "db")
    close_clients(under=base)
    return built


@pytest.fixture(scope="session")
def corpus_built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """``tmp_settings`` ingested once with the ``fake_embedder`` fixture's embedder: tests copy
    it onto their own ``tmp_settings`` (``indexed_tmp_settings``). Never modified."""
    from rag.ingest import ingest
    from rag.store import close_clients
    from tests.fakes import clear_rag_env

    base = tmp_path_factory.mktemp("corpus-built")
    with pytest.MonkeyPatch.context() as mp:
        clear_rag_env(mp)
        shutil.copytree(CORPUS, base / "corpus")
        built = settings_in(base, base / "corpus")
        ingest(built, embedder=HashingEmbedder())
    close_clients(under=base)
    return built


@pytest.fixture
def indexed_tmp_settings(tmp_settings: Settings, corpus_built: Settings) -> Settings:
    """``tmp_settings`` with the corpus indexed by ``HashingEmbedder()`` (as
    ``ingest(tmp_settings, embedder=fake_embedder)`` leaves it; copied, not ingested again)."""
    from tests.fakes import copy_built_index

    copy_built_index(corpus_built, tmp_settings)
    return tmp_settings


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The real corpus ingested once with the real embedder into a session index."""
    from rag.ingest import ingest

    base = tmp_path_factory.mktemp("real")
    settings = settings_in(base, CORPUS)
    ingest(settings)
    yield settings
