"""Ingest with the real embedding model and the real Chroma (issue: foundation)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.embedding import index_model_name
from rag.settings import Settings
from rag.store import ChromaStore
from rag_cli.app import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def _cli(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(
        app, [*args, "--corpus", str(settings.corpus_dir), "--db", str(settings.index_dir)]
    )


def test_ingest_is_idempotent_incremental_and_reports(tmp_settings: Settings) -> None:
    r1 = _cli(tmp_settings, "ingest", "--json")
    assert r1.exit_code == 0, r1.output
    first = json.loads(r1.stdout)
    assert (first["documents"], first["paragraphs"], first["chunks_added"]) == (1, 8, 8)
    store = ChromaStore(settings=tmp_settings)
    ids = set(store.existing())
    assert store.count() == 8

    r2 = _cli(tmp_settings, "ingest", "--json")
    second = json.loads(r2.stdout)
    assert second["chunks_added"] == 0 and second["paragraphs_updated"] == 0
    assert set(store.existing()) == ids and store.count() == 8

    path = tmp_settings.corpus_dir / "bhutan-qatar.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("19th Mid-Term", "20th Mid-Term"), encoding="utf-8"
    )
    third = json.loads(_cli(tmp_settings, "ingest", "--json").stdout)
    assert (
        third["paragraphs_updated"] == 1
        and third["chunks_added"] == 1
        and third["chunks_removed"] == 1
    )
    changed = ids - set(store.existing())
    assert len(changed) == 1

    (tmp_settings.corpus_dir / "notes.txt").write_text(
        "A note about tea.\n\nAnother note.\n", encoding="utf-8"
    )
    _cli(tmp_settings, "ingest")
    assert store.count() == 10
    (tmp_settings.corpus_dir / "notes.txt").unlink()
    human = _cli(tmp_settings, "ingest")
    assert "removed 1" in human.stdout
    assert store.count() == 8
    assert {m["source"] for m in store.existing().values()} == {"bhutan-qatar.md"}

    status = json.loads(_cli(tmp_settings, "status", "--json").stdout)
    # the model and, for int8 vectors, the backend that made them
    assert status["embedding_model"] == index_model_name(tmp_settings.embedding)
    assert status["embedding_model"].startswith("all-MiniLM-L6-v2") and status["chunks"] == 8
    assert status["current_format"] and status["keyword_chunks"] == 8
    assert status["documents"] == {"bhutan-qatar.md": {"paragraphs": 8, "chunks": 8}}


def test_bad_files_beside_good_ones(tmp_settings: Settings) -> None:
    c = tmp_settings.corpus_dir
    (c / "image.txt").write_bytes(bytes(range(256)) * 8)
    (c / "legacy.txt").write_bytes("Caf\xe9 du monde, cr\xe8me br\xfbl\xe9e.".encode("cp1252"))
    (c / "cut.pdf").write_bytes(
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<<"
    )
    (c / "page.html").write_text(
        "<html><body><h1>Tea</h1><p>Green tea grows in Bhutan too.</p></body></html>",
        encoding="utf-8",
    )
    result = _cli(tmp_settings, "ingest")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 3
    for name in ("image.txt", "legacy.txt", "cut.pdf"):
        assert sum(name in w for w in warnings) == 1
    sources = {m["source"] for m in ChromaStore(settings=tmp_settings).existing().values()}
    assert sources == {"bhutan-qatar.md", "page.html"}


def test_model_change_is_detected(tmp_settings: Settings) -> None:
    assert _cli(tmp_settings, "ingest").exit_code == 0
    import os

    os.environ["RAG_EMBEDDING__MODEL"] = str(tmp_settings.corpus_dir)  # any other model name
    try:
        result = _cli(tmp_settings, "search", "Qatar")
    finally:
        del os.environ["RAG_EMBEDDING__MODEL"]
    assert result.exit_code == 1
    assert "--reset" in result.stderr and "Traceback" not in result.output
