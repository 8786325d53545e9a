"""Incremental ingest against a real (throwaway) Chroma folder with the fake embedder."""

from __future__ import annotations

import pytest

from rag.errors import CorpusError, EmbeddingModelMismatchError
from rag.ingest import ingest
from rag.settings import Settings
from rag.store import ChromaStore
from tests.fakes import HashingEmbedder


def _ids(settings: Settings) -> dict[str, dict]:
    return ChromaStore(settings=settings, embedding_model="fake-hashing").existing()


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
    path.write_text(text.replace("Kathmandu Policy Forum", "Thimphu Policy Forum"), encoding="utf-8")
    report = ingest(tmp_settings, embedder=fake_embedder)
    after = _ids(tmp_settings)
    assert report.paragraphs_updated == 1 and report.paragraphs_unchanged == 7
    removed = set(before) - set(after)
    added = set(after) - set(before)
    assert {before[i]["paragraph"] for i in removed} == {3}
    assert {after[i]["paragraph"] for i in added} == {3}
    assert "Thimphu" in next(after[i]["paragraph_text"] for i in added)


def test_deleted_document_is_removed(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    (tmp_settings.corpus_dir / "other.txt").write_text("Another doc.\n\nSecond para.\n", encoding="utf-8")
    ingest(tmp_settings, embedder=fake_embedder)
    assert {m["source"] for m in _ids(tmp_settings).values()} == {"bhutan-qatar.md", "other.txt"}
    (tmp_settings.corpus_dir / "other.txt").unlink()
    report = ingest(tmp_settings, embedder=fake_embedder)
    assert report.documents_removed == 1 and report.chunks_removed == 2
    assert {m["source"] for m in _ids(tmp_settings).values()} == {"bhutan-qatar.md"}


def test_empty_corpus_leaves_the_index_alone(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    ingest(tmp_settings, embedder=fake_embedder)
    before = _ids(tmp_settings)
    for f in tmp_settings.corpus_dir.iterdir():
        f.unlink()
    with pytest.raises(CorpusError, match="no readable documents"):
        ingest(tmp_settings, embedder=fake_embedder)
    assert _ids(tmp_settings) == before


def test_model_change_requires_reset(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> None:
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
