"""Adding documents from the UI: names cannot leave the corpus folder, a bad file changes
nothing, nothing is overwritten unless asked, the index follows at once, removal works."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from rag.embedding import index_model_name
from rag.errors import CorpusError
from rag.settings import Settings
from rag.status import index_status
from rag.uploads import add_documents, remove_document, safe_name
from tests.fakes import HashingEmbedder

REAL = Path(__file__).resolve().parents[1] / "data" / "real_docs" / "corpus"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\Windows\\evil.PDF", "evil.pdf"),
        ("/abs/path/report.html", "report.html"),
        (".hidden.md", "hidden.md"),
        ("a<b>:c|d?.txt", "a_b_c_d.txt"),
        ("rapport été.docx", "rapport été.docx"),
        ("x" * 300 + ".md", "x" * 117 + ".md"),
    ],
)
def test_safe_name_stays_in_the_folder(given: str, expected: str) -> None:
    assert safe_name(given) == expected


@pytest.mark.parametrize("given", ["..", "../", "/", "...", "\x00\x01"])
def test_unusable_names_are_refused(given: str) -> None:
    with pytest.raises(CorpusError):
        safe_name(given)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_bad_file_gets_one_reason_and_changes_nothing(
    tmp_settings: Settings, tmp_path: Path, fake_embedder: HashingEmbedder
) -> None:
    from rag.ingest import ingest

    ingest(tmp_settings, embedder=fake_embedder)
    before_files = files_in(tmp_settings.corpus_dir)
    before_index = index_status(tmp_settings).documents
    bad = tmp_path / "upload" / "broken.pdf"
    bad.parent.mkdir()
    bad.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    report = add_documents([bad], tmp_settings, embedder=fake_embedder)
    assert report.added == [] and report.ingest is None
    assert len(report.rejected) == 1 and report.rejected[0][0] == "broken.pdf"
    assert "PDF" in report.rejected[0][1]
    assert files_in(tmp_settings.corpus_dir) == before_files
    assert index_status(tmp_settings).documents == before_index


def test_upload_lands_in_the_corpus_and_the_index(
    tmp_settings: Settings, tmp_path: Path, fake_embedder: HashingEmbedder
) -> None:
    up = tmp_path / "upload"
    up.mkdir()
    shutil.copy(REAL / "lake-verrin-report.pdf", up / "report.pdf")
    shutil.copy(REAL / "libffi-simple-example.html", up / "simple.html")
    (up / "notes.exe").write_bytes(b"MZ")
    report = add_documents(
        [(up / "report.pdf", "../../report.pdf"), up / "simple.html", up / "notes.exe"],
        tmp_settings,
        embedder=fake_embedder,
    )
    assert report.added == ["report.pdf", "simple.html"]
    assert [r[0] for r in report.rejected] == ["notes.exe"]
    assert "unsupported file type" in report.rejected[0][1]
    assert (tmp_settings.corpus_dir / "report.pdf").read_bytes() == (up / "report.pdf").read_bytes()
    assert not (tmp_path / "report.pdf").exists()
    assert not [p for p in tmp_settings.corpus_dir.iterdir() if p.name.startswith(".upload-")]
    docs = index_status(tmp_settings).documents
    assert {"report.pdf", "simple.html", "bhutan-qatar.md"} <= set(docs)


def test_no_overwrite_without_asking(
    tmp_settings: Settings, tmp_path: Path, fake_embedder: HashingEmbedder
) -> None:
    seed = tmp_settings.corpus_dir / "bhutan-qatar.md"
    original = seed.read_bytes()
    new = tmp_path / "bhutan-qatar.md"
    new.write_text("# Replaced\n\nA different text about something else entirely.\n")
    report = add_documents([new], tmp_settings, embedder=fake_embedder)
    assert report.added == [] and "already in the corpus" in report.rejected[0][1]
    assert seed.read_bytes() == original
    report = add_documents([new], tmp_settings, replace=True, embedder=fake_embedder)
    assert report.added == ["bhutan-qatar.md"]
    assert seed.read_bytes() == new.read_bytes()


def test_remove_document(
    tmp_settings: Settings, tmp_path: Path, fake_embedder: HashingEmbedder
) -> None:
    up = tmp_path / "simple.html"
    shutil.copy(REAL / "libffi-simple-example.html", up)
    add_documents([up], tmp_settings, embedder=fake_embedder)
    assert "simple.html" in index_status(tmp_settings).documents
    with pytest.raises(CorpusError):
        remove_document("../simple.html", tmp_settings, embedder=fake_embedder)
    remove_document("simple.html", tmp_settings, embedder=fake_embedder)
    assert not (tmp_settings.corpus_dir / "simple.html").exists()
    assert "simple.html" not in index_status(tmp_settings).documents
    with pytest.raises(CorpusError, match="only document"):
        remove_document("bhutan-qatar.md", tmp_settings, embedder=fake_embedder)
    assert (tmp_settings.corpus_dir / "bhutan-qatar.md").exists()


def test_ui_upload_handler_reports_and_refreshes(
    tmp_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.app import ChatController

    monkeypatch.setattr(
        sys.modules["rag.ingest"],
        "get_embedder",
        lambda s=None: HashingEmbedder(model_name=index_model_name((s or Settings()).embedding)),
    )
    ctl = ChatController(tmp_settings, chain=None)
    good = tmp_path / "lake-verrin-report.pdf"
    shutil.copy(REAL / "lake-verrin-report.pdf", good)
    bad = tmp_path / "corrupt.docx"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    msg, status, names = ctl.upload([str(good), str(bad)], False)
    assert "Added and indexed <b>lake-verrin-report.pdf</b>" in msg
    assert msg.count("Not added") == 1 and "corrupt.docx" in msg and "Word" in msg
    assert "lake-verrin-report.pdf" in status and "lake-verrin-report.pdf" in names
    assert "corrupt.docx" not in names
    msg, status, names = ctl.remove("lake-verrin-report.pdf")
    assert "Removed" in msg and "lake-verrin-report.pdf" not in names
    assert "lake-verrin-report.pdf" not in status
