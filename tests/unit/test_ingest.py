"""Incremental ingest against a real (throwaway) Chroma folder with the fake embedder."""

from __future__ import annotations

import threading

import pytest

from rag.chunk_store import ChunkStore, chunk_store_dir, current
from rag.errors import CorpusError, EmbeddingModelMismatchError, IndexFormatError
from rag.ingest import ingest
from rag.retrieval import HybridRetriever
from rag.settings import EmbeddingSettings, Settings
from rag.store import ChromaStore
from tests.fakes import HashingEmbedder


def _ids(settings: Settings) -> dict[str, dict]:
    return ChromaStore(settings=settings, embedding_model="fake-hashing").existing()


def _published(settings: Settings) -> ChunkStore:
    got = current(chunk_store_dir(settings))
    assert got is not None
    return got[0]


def test_second_run_adds_nothing(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    first = ingest(tmp_settings, embedder=fake_embedder)
    assert (first.documents, first.paragraphs, first.chunks_added) == (1, 8, 8)
    before = _ids(tmp_settings)
    second = ingest(tmp_settings, embedder=fake_embedder)
    assert second.chunks_added == 0 and second.chunks_removed == 0
    assert second.paragraphs_updated == 0 and second.documents_unchanged == 1
    assert _ids(tmp_settings) == before


def test_editing_one_paragraph_replaces_only_its_chunks(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    before = _ids(tmp_settings)
    path = tmp_settings.corpus_dir / "bhutan-qatar.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("Kathmandu Policy Forum", "Thimphu Policy Forum"), encoding="utf-8"
    )
    report = ingest(tmp_settings, embedder=fake_embedder)
    after = _ids(tmp_settings)
    assert report.paragraphs_updated == 1 and report.paragraphs_unchanged == 7
    removed = set(before) - set(after)
    added = set(after) - set(before)
    assert {before[i]["paragraph"] for i in removed} == {3}
    assert {after[i]["paragraph"] for i in added} == {3}
    index = _published(tmp_settings)
    assert "Thimphu" in next(index.texts[index.row(i)] for i in added)  # type: ignore[index]


def test_deleted_document_is_removed(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    (tmp_settings.corpus_dir / "other.txt").write_text(
        "Another doc.\n\nSecond para.\n", encoding="utf-8"
    )
    ingest(tmp_settings, embedder=fake_embedder)
    assert {m["source"] for m in _ids(tmp_settings).values()} == {"bhutan-qatar.md", "other.txt"}
    (tmp_settings.corpus_dir / "other.txt").unlink()
    report = ingest(tmp_settings, embedder=fake_embedder)
    assert report.documents_removed == 1 and report.chunks_removed == 2
    assert {m["source"] for m in _ids(tmp_settings).values()} == {"bhutan-qatar.md"}


def test_empty_corpus_leaves_the_index_alone(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    before = _ids(tmp_settings)
    for f in tmp_settings.corpus_dir.iterdir():
        f.unlink()
    with pytest.raises(CorpusError, match="no readable documents"):
        ingest(tmp_settings, embedder=fake_embedder)
    assert _ids(tmp_settings) == before


def test_model_change_requires_reset(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    other = HashingEmbedder(model_name="another-model")
    with pytest.raises(EmbeddingModelMismatchError, match="--reset"):
        ingest(tmp_settings, embedder=other)
    report = ingest(tmp_settings, embedder=other, reset=True)
    assert report.chunks_added == 8


def test_a_file_that_turns_unreadable_keeps_its_chunks(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    (tmp_settings.corpus_dir / "other.txt").write_text("Another doc.\n", encoding="utf-8")
    ingest(tmp_settings, embedder=fake_embedder)
    before = _ids(tmp_settings)
    (tmp_settings.corpus_dir / "other.txt").write_bytes(b"\x00\x01 now binary")
    report = ingest(tmp_settings, embedder=fake_embedder)
    assert [s for s, _ in report.skipped] == ["other.txt"]
    assert report.chunks_removed == 0 and _ids(tmp_settings) == before
    # its text comes from the previous index: it is still found, whole
    retriever = HybridRetriever(settings=tmp_settings, embedder=fake_embedder)
    hits = retriever.search("Another doc", k=8)
    assert [p.text for p in hits if p.source == "other.txt"] == ["Another doc."]


def test_paragraph_text_is_stored_once(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    """Chroma keeps vectors with source and paragraph only; the chunk index keeps each chunk's
    text and a split paragraph's whole text once (on its first chunk); search still returns
    whole paragraphs."""
    long_text = " ".join(
        f"Clause {i} of the Thimphu accord covers hydropower quota {i}." for i in range(80)
    )
    (tmp_settings.corpus_dir / "accord.txt").write_text(long_text + "\n", encoding="utf-8")
    ingest(tmp_settings, embedder=fake_embedder)
    col = ChromaStore(settings=tmp_settings, embedding_model="fake-hashing").collection()
    got = col.get(include=["documents", "metadatas"])
    assert set(got["documents"]) == {None}
    assert {tuple(sorted(m)) for m in got["metadatas"]} == {("paragraph", "source")}
    index = _published(tmp_settings)
    split = sorted(
        (r for r in range(index.count) if index.metadata[r]["source"] == "accord.txt"),
        key=lambda r: index.metadata[r]["chunk_index"],
    )
    assert len(split) > 2
    assert [index.paragraph_texts[r] for r in split] == [long_text] + [""] * (len(split) - 1)
    assert all(index.paragraph_texts[r] == "" for r in range(index.count) if r not in split)
    retriever = HybridRetriever(settings=tmp_settings, embedder=fake_embedder)
    top = retriever.search("hydropower quota 77", k=1)
    assert top[0].source == "accord.txt" and top[0].text == long_text
    top = retriever.search("Kathmandu Policy Forum", k=1)
    assert top[0].paragraph == 3 and "Kathmandu Policy Forum" in top[0].text


class _GatedEmbedder(HashingEmbedder):
    """Blocks inside embedding until released, so a test can act during an ingest."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.entered.set()
        assert self.release.wait(30)
        return super().embed_documents(texts)


def test_a_search_during_an_ingest_uses_the_last_complete_index(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    retriever = HybridRetriever(settings=tmp_settings, embedder=HashingEmbedder())
    assert retriever.search("Kathmandu Policy Forum", k=1)[0].paragraph == 3
    (tmp_settings.corpus_dir / "zanzibar.txt").write_text(
        "Zanzibar cloves are traded through Stone Town.\n", encoding="utf-8"
    )
    gated = _GatedEmbedder()
    worker = threading.Thread(target=ingest, args=(tmp_settings,), kwargs={"embedder": gated})
    worker.start()
    try:
        assert gated.entered.wait(30)
        # The ingest is stuck embedding: searches answer from the previous index, at once.
        during = retriever.search("Zanzibar cloves Stone Town", k=5)
        assert worker.is_alive()
        assert "zanzibar.txt" not in {p.source for p in during}
        assert retriever.search("Kathmandu Policy Forum", k=1)[0].paragraph == 3
    finally:
        gated.release.set()
        worker.join(30)
    after = retriever.search("Zanzibar cloves Stone Town", k=1)
    assert after[0].source == "zanzibar.txt" and after[0].bm25_rank == 1


class _DyingEmbedder(HashingEmbedder):
    """Embeds ``batches`` batches, then fails like a killed process."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.left = batches

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().embed_documents(texts)


def test_a_killed_ingest_resumes_from_what_it_stored(tmp_settings: Settings) -> None:
    settings = tmp_settings.model_copy(update={"embedding": EmbeddingSettings(batch_size=1)})
    with pytest.raises(KeyboardInterrupt):  # batches of 4 chunks: dies after the first
        ingest(settings, embedder=_DyingEmbedder(batches=1))
    report = ingest(settings, embedder=HashingEmbedder())
    assert (report.chunks_resumed, report.chunks_added, report.chunks_unchanged) == (4, 4, 4)
    assert report.paragraphs_per_s > 0
    again = ingest(settings, embedder=HashingEmbedder())
    assert (again.chunks_resumed, again.chunks_added) == (0, 0)


def test_an_old_format_index_asks_for_reset(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    store = ChromaStore(settings=tmp_settings, embedding_model="fake-hashing")
    old = store.client.create_collection(
        "corpus",
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"embedding_model": "fake-hashing"},
    )
    old.add(
        ids=["x"], embeddings=[[0.1] * 256], documents=["t"], metadatas=[{"paragraph_text": "t"}]
    )
    with pytest.raises(IndexFormatError, match="rag ingest --reset"):
        ingest(tmp_settings, embedder=fake_embedder)
    with pytest.raises(IndexFormatError, match="rag ingest --reset"):
        HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("Kathmandu")
    report = ingest(tmp_settings, embedder=fake_embedder, reset=True)
    assert report.chunks_added == 8
    assert HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("Kathmandu", k=1)


def test_an_index_in_the_previous_layout_asks_for_reset(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    """Chunk texts in Chroma and a keyword index without texts: one clear --reset message."""
    store = ChromaStore(settings=tmp_settings, embedding_model="fake-hashing")
    store.client.create_collection(
        "corpus",
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"embedding_model": "fake-hashing", "schema": 2},
    ).add(ids=["x"], embeddings=[[0.1] * 256], documents=["t"], metadatas=[{"source": "a"}])
    root = chunk_store_dir(tmp_settings)
    (root / "v1").mkdir(parents=True)
    (root / "CURRENT").write_text('{"version": "v1", "count": 1}', encoding="utf-8")
    with pytest.raises(IndexFormatError, match="rag ingest --reset"):
        HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("Kathmandu")
    with pytest.raises(IndexFormatError, match="rag ingest --reset"):
        ingest(tmp_settings, embedder=fake_embedder)
    assert ingest(tmp_settings, embedder=fake_embedder, reset=True).chunks_added == 8
    assert HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("Kathmandu", k=1)
