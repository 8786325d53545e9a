"""Several processes over one Chroma "server": texts in Chroma, each process's keyword index
derived from it, and the ingest lock kept there.

The server is stood in for by a throwaway Chroma folder registered as the client of a fake
``RAG_CHROMA_URL``; each "process" has its own data folder. ``tests/integration/
test_two_instances.py`` runs the same story against a real ``chroma run`` and two ``rag serve``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from filelock import Timeout

from rag import store as store_module
from rag.chunk_store import read_manifest
from rag.errors import IndexBusyError, IndexFormatError
from rag.ingest import busy_error, ingest
from rag.replicas import ChromaLock, get_sync, read_index
from rag.retrieval import HybridRetriever
from rag.settings import ChromaSettings, Settings
from rag.store import ChromaStore, ids_digest
from tests.fakes import HashingEmbedder

URL = "http://replicas.test:8000"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    client = chromadb.PersistentClient(path=str(tmp_path / "server"))
    monkeypatch.setitem(store_module._CLIENTS, f"url:{URL}", client)
    yield


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", folder)
    return folder


def instance(tmp_path: Path, corpus: Path, name: str) -> Settings:
    """One app process's settings: the shared server, its own data folder."""
    return Settings(
        corpus_dir=corpus,
        data_dir=tmp_path / name,
        models_dir=ROOT / "data" / "models",
        chroma_url=URL,
        chroma=ChromaSettings(sync_s=3600),  # the tests call refresh() themselves
    )


def retriever(settings: Settings) -> HybridRetriever:
    return HybridRetriever(settings=settings, embedder=HashingEmbedder())


def cited(r: HybridRetriever, query: str) -> list[tuple[str, int]]:
    return [(p.source, p.paragraph) for p in r.search(query, k=3)]


def refresh(r: HybridRetriever) -> bool:
    return get_sync(r.settings, r.store).refresh()


def test_a_second_process_answers_from_what_the_first_ingested(
    server: None, tmp_path: Path, corpus: Path
) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    ingest(a, embedder=HashingEmbedder())
    ra, rb = retriever(a), retriever(b)
    assert read_manifest(rb._keyword_root) is None  # b has nothing local yet
    query = "Kathmandu Policy Forum"
    assert [p.to_dict() for p in rb.search(query, k=5)] == [
        p.to_dict() for p in ra.search(query, k=5)
    ]
    assert cited(rb, query)[0] == ("bhutan-qatar.md", 3)


def test_an_added_and_a_removed_document_reach_the_other_process(
    server: None, tmp_path: Path, corpus: Path
) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    ingest(a, embedder=HashingEmbedder())
    rb = retriever(b)
    assert ("extra.md", 1) not in cited(rb, "quokka festival Perth")
    (corpus / "extra.md").write_text("The quokka festival is held every March in Perth.\n")
    ingest(a, embedder=HashingEmbedder())
    assert refresh(rb)
    assert cited(rb, "quokka festival Perth")[0] == ("extra.md", 1)
    (corpus / "extra.md").unlink()
    ingest(a, embedder=HashingEmbedder())
    assert refresh(rb)
    assert ("extra.md", 1) not in cited(rb, "quokka festival Perth")


def test_a_half_written_collection_is_not_read(server: None, tmp_path: Path, corpus: Path) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    ingest(a, embedder=HashingEmbedder())
    rb = retriever(b)
    before = cited(rb, "Kathmandu Policy Forum")
    store = ChromaStore(settings=a, embedding_model="fake-hashing")
    col = store.collection()
    # an ingest elsewhere has stored a chunk but not yet recorded the new fingerprint
    col.add(ids=["extra"], embeddings=[[0.1] * 256], documents=["x"], metadatas=[{"source": "x"}])
    assert read_index(store, store.collection()) is None
    meta = dict(col.metadata or {})
    meta.pop("hnsw:space", None)
    col.modify(metadata={**meta, "fingerprint": "0" * 16})
    assert refresh(rb) is False
    assert cited(rb, "Kathmandu Policy Forum") == before  # the last complete index


def test_a_server_collection_without_texts_must_be_rebuilt(
    server: None, tmp_path: Path, corpus: Path
) -> None:
    a = instance(tmp_path, corpus, "a")
    store_module._CLIENTS[f"url:{URL}"].create_collection(
        "corpus", metadata={"schema": store_module.SCHEMA, "embedding_model": "fake-hashing"}
    )
    with pytest.raises(IndexFormatError, match="rag ingest --reset"):
        ChromaStore(settings=a, embedding_model="fake-hashing").collection()


def test_the_ingest_lock_excludes_a_second_writer_and_a_dead_one_is_broken(
    server: None, tmp_path: Path, corpus: Path
) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    first, second = ChromaLock(a), ChromaLock(b)
    first.acquire(timeout=0)
    assert isinstance(busy_error(b), IndexBusyError)
    with pytest.raises(Timeout):
        second.acquire(timeout=0.3)
    first.release()
    assert busy_error(b) is None
    second.acquire(timeout=0)
    second.release()
    # a writer that died holding the lock: renewed long ago
    client = store_module._CLIENTS[f"url:{URL}"]
    client.create_collection(first.name, metadata={"owner": "dead:1", "renewed": time.time() - 1e4})
    assert busy_error(b) is None
    second.acquire(timeout=0)
    assert (second.holder() or {}).get("owner") == second.owner
    second.release()


def test_two_ingests_at_once_leave_a_consistent_collection(
    server: None, tmp_path: Path, corpus: Path
) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    other = tmp_path / "other-corpus"
    other.mkdir()
    (other / "extra.md").write_text("The quokka festival is held every March in Perth.\n")
    b = b.model_copy(update={"corpus_dir": other})
    reports: list[object] = []

    def run(settings: Settings) -> None:
        reports.append(ingest(settings, embedder=HashingEmbedder()))

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 2  # neither failed
    store = ChromaStore(settings=a, embedding_model="fake-hashing")
    col = store.collection()
    held = store.existing()
    # one ingest ran after the other: the collection is exactly one corpus, fingerprint and all
    assert {m["source"] for m in held.values()} in ({"bhutan-qatar.md"}, {"extra.md"})
    assert (col.metadata or {})["fingerprint"] == ids_digest(list(held))
    index = read_index(store, col)
    assert index is not None and sorted(index.ids) == sorted(held)


def test_the_embedded_default_keeps_no_texts_in_chroma(tmp_path: Path, corpus: Path) -> None:
    local = Settings(corpus_dir=corpus, data_dir=tmp_path / "data", models_dir=tmp_path / "m")
    ingest(local, embedder=HashingEmbedder())
    col = ChromaStore(settings=local, embedding_model="fake-hashing").collection()
    got = col.get(include=["documents", "metadatas"])
    assert got["ids"] and not any(got["documents"])
    assert all(set(m) == {"source", "paragraph"} for m in got["metadatas"])
    assert "texts" not in (col.metadata or {})


def test_a_reset_by_another_process_is_followed(server: None, tmp_path: Path, corpus: Path) -> None:
    a, b = instance(tmp_path, corpus, "a"), instance(tmp_path, corpus, "b")
    ingest(a, embedder=HashingEmbedder())
    rb = retriever(b)
    before = cited(rb, "Kathmandu Policy Forum")
    ingest(a, reset=True, embedder=HashingEmbedder())  # a new collection, the same chunks
    assert cited(rb, "Kathmandu Policy Forum") == before  # before b's next check
    assert refresh(rb)
    assert read_manifest(rb._keyword_root)["collection_id"] == str(rb.store.collection().id)
    assert cited(rb, "Kathmandu Policy Forum") == before
