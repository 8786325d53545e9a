"""Ingest, retrieval and one answer through a real Chroma server (``RAG_CHROMA_URL``).

Starts ``chroma run`` (the chromadb CLI from the venv) on a free loopback port with a
throwaway persistence folder, and points ``Settings.chroma_url`` at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import LLMSettings, Settings
from tests.servers import free_port, start_chroma, stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def chroma_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    base = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    try:
        proc = start_chroma(base / "db", port, base / "server.log", STARTUP_TIMEOUT_S)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    request.addfinalizer(lambda: stop(proc))
    url = f"http://127.0.0.1:{port}"
    yield url


@pytest.fixture(scope="module")
def server_settings(chroma_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("chroma-client")
    return Settings(
        corpus_dir=ROOT / "corpus",
        data_dir=base / "data",
        db_dir=base / "unused-local-db",
        models_dir=ROOT / "data" / "models",
        chroma_url=chroma_url,
        # The machine running the tests is small and often shared: a generous generation timeout.
        llm=LLMSettings(timeout_s=600),
    )


def test_ingest_is_idempotent_on_server(server_settings: Settings) -> None:
    from rag.ingest import ingest
    from rag.store import ChromaStore

    first = ingest(server_settings)
    assert first.documents >= 1 and first.chunks > 0
    assert first.chunks_added == first.chunks
    store = ChromaStore(settings=server_settings)
    assert store.count() == first.chunks

    second = ingest(server_settings)
    assert second.chunks_added == 0
    assert second.chunks_removed == 0
    assert second.chunks_unchanged == first.chunks
    assert store.count() == first.chunks
    # Nothing was written to the local folder: the server holds the index.
    assert not (server_settings.index_dir / "chroma.sqlite3").exists()


def test_retrieve_through_server(server_settings: Settings) -> None:
    from rag.ingest import ingest
    from rag.retrieval import retrieve

    ingest(server_settings)
    top = retrieve("Kathmandu Policy Forum", k=5, settings=server_settings)
    assert top, "no passages"
    assert (top[0].source, top[0].paragraph) == ("bhutan-qatar.md", 3), [
        (p.source, p.paragraph) for p in top
    ]
    assert "Kathmandu Policy Forum" in top[0].text
    assert top[0].dense_rank is not None and top[0].bm25_rank is not None


@pytest.mark.llm
def test_ask_through_server(server_settings: Settings) -> None:
    from rag.chain import ask
    from rag.ingest import ingest

    ingest(server_settings)
    answer = ask(
        "Which institution is Dr. Tenzin Wangchuk affiliated with?", settings=server_settings
    )
    assert not answer.abstained, (answer.reason, answer.raw_output)
    assert "Kathmandu Policy Forum" in answer.text
    assert ("bhutan-qatar.md", 3) in {(c.source, c.paragraph) for c in answer.citations}
