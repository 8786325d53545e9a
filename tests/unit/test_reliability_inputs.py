"""Bad input everywhere: the ``rag`` CLI (in-process) and the Python API.

Every case must end in one clear message (no traceback), a non-zero exit where the command
failed, and an index left exactly as it was. The fake embedder and a fake LLM stand in for the
real models: what is tested here is the shell and the validation, not the models.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

import rag
from rag.chunk_store import chunk_store_dir, current
from rag.embedding import index_model_name
from rag.errors import CorpusError, IndexNotFoundError, InvalidQueryError
from rag.ingest import ingest
from rag.settings import Settings
from rag.store import ChromaStore
from rag_cli.app import app
from tests.fakes import HashingEmbedder, clear_rag_env, copy_index, use_fake_embedder

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "corpus" / "bhutan-qatar.md"

MIXED = "مرحبا بالعالم नमस्ते दुनिया 🙂🚀 Bhutan"
HUGE_QUERY = "Kathmandu " * 10_240  # ~100 KB
WHITESPACE = " \t\n\r\u00a0\u2003 "
CONTROL_ONLY = "\x01\x02\x07\x1b\x7f"


@dataclass
class Env:
    corpus: Path
    db: Path
    settings: Settings
    llm_calls: list[str]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """id -> metadata of everything indexed ({} when there is no index)."""
        store = ChromaStore(settings=self.settings)
        return store.existing() if store.exists() else {}

    def args(self, *extra: str) -> list[str]:
        return [*extra, "--corpus", str(self.corpus), "--db", str(self.db)]


class RecordingLLM(FakeListChatModel):
    """A fake LLM that records prompts, so tests can prove the model was never asked."""

    calls: list[str] = []

    def _call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        self.calls.append(str(messages))
        return super()._call(messages, *args, **kwargs)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_built: Settings) -> Iterator[Env]:
    """A seeded corpus and index in tmp_path; the CLI's model factories return fakes."""
    clear_rag_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    # The lexical fake embedder scores lower than MiniLM: relax the relevance floor.
    monkeypatch.setenv("RAG_RETRIEVAL__MIN_RELEVANCE", "0.05")
    db = tmp_path / "db"
    # the seed document indexed by fake_embedder (tests.fakes.seed_index's index, copied)
    settings = copy_index(seed_built, tmp_path, db)
    corpus = settings.corpus_dir

    calls: list[str] = []
    llm = RecordingLLM(responses=["NOT FOUND"])
    llm.calls = calls
    use_fake_embedder(monkeypatch)
    monkeypatch.setattr(sys.modules["rag.chain"], "get_llm", lambda s=None: llm)
    monkeypatch.setattr(sys.modules["rag.chain"], "llm_lock", lambda s: nullcontext())
    yield Env(corpus, db, settings, calls)


runner = CliRunner()


def run(args: list[str]) -> Any:
    result = runner.invoke(app, args, catch_exceptions=True)
    # An exception other than the clean exit means a traceback would have been shown.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.output
    return result


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def assert_one_error(result: Any, pattern: str) -> None:
    assert result.exit_code != 0, result.output
    err = lines(result.stderr)
    assert len(err) == 1, err
    assert err[0].startswith("Error: ") and re.search(pattern, err[0], re.IGNORECASE), err[0]


# -- questions and queries -------------------------------------------------------------------

BAD_QUERIES = {
    "empty": ("", "empty"),
    "whitespace": (WHITESPACE, "empty"),
    "control characters only": (CONTROL_ONLY, "empty"),
    "100 KB": (HUGE_QUERY, r"characters long; the limit is \d+"),
}


@pytest.mark.parametrize("case", list(BAD_QUERIES))
def test_cli_search_rejects_bad_query(env: Env, case: str) -> None:
    query, pattern = BAD_QUERIES[case]
    before = env.snapshot()
    result = run(env.args("search", query))
    assert_one_error(result, pattern)
    assert result.stdout == ""
    assert env.snapshot() == before


@pytest.mark.parametrize("case", list(BAD_QUERIES))
def test_cli_ask_rejects_bad_question_before_any_model_runs(env: Env, case: str) -> None:
    question, pattern = BAD_QUERIES[case]
    before = env.snapshot()
    result = run(env.args("ask", question))
    assert_one_error(result, pattern)
    assert env.llm_calls == []
    assert env.snapshot() == before


@pytest.mark.parametrize("k", ["0", "-3"])
def test_cli_search_rejects_impossible_k(env: Env, k: str) -> None:
    result = run(env.args("search", "Kathmandu Policy Forum", "-k", k))
    assert_one_error(result, "k must be")


def test_cli_search_with_control_characters_and_mixed_scripts(env: Env) -> None:
    before = env.snapshot()
    noisy = "Kathmandu\x00\x1b[31m Policy\x7f\x07 Forum\u200b"
    result = run(env.args("search", noisy, "--json"))
    assert result.exit_code == 0, result.output
    import json

    hits = json.loads(result.stdout)
    assert (hits[0]["source"], hits[0]["paragraph"]) == ("bhutan-qatar.md", 3)
    # Arabic + Devanagari + emoji: no crash, valid (possibly empty) result, nothing changed.
    result = run(env.args("search", MIXED))
    assert result.exit_code == 0, result.output
    assert "bhutan-qatar.md" in result.stdout or "No matching paragraphs." in result.stdout
    assert lines(result.stderr) == []
    assert env.snapshot() == before


def test_cli_ask_mixed_scripts_gets_an_answer_or_abstention(env: Env) -> None:
    result = run(env.args("ask", MIXED, "--json"))
    assert result.exit_code == 0, result.output
    import json

    payload = json.loads(result.stdout)
    assert payload["abstained"] is True and payload["answer"] == rag.ABSTENTION_TEXT


def test_cli_search_before_any_ingest_is_a_clear_error(env: Env, tmp_path: Path) -> None:
    result = run(["search", "Bhutan", "--corpus", str(env.corpus), "--db", str(tmp_path / "nodb")])
    assert_one_error(result, "nothing is indexed yet: run `rag ingest`")


# -- corpus folders -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["empty folder", "missing folder", "file given as corpus"])
def test_cli_ingest_bad_corpus_path_leaves_index_alone(env: Env, tmp_path: Path, case: str) -> None:
    before = env.snapshot()
    assert len(before) == 8
    if case == "empty folder":
        corpus, pattern = tmp_path / "empty", "no readable documents.*left as it was"
        corpus.mkdir()
    elif case == "missing folder":
        corpus, pattern = tmp_path / "missing", "does not exist"
    else:
        corpus, pattern = env.corpus / SEED.name, "is not a folder"
    result = run(["ingest", "--corpus", str(corpus), "--db", str(env.db)])
    assert_one_error(result, pattern)
    assert result.stdout == ""
    assert env.snapshot() == before


def test_cli_ingest_only_unreadable_files_is_an_error(env: Env, tmp_path: Path) -> None:
    corpus = tmp_path / "allbad"
    corpus.mkdir()
    (corpus / "zero.md").write_bytes(b"")
    (corpus / "bin.txt").write_bytes(b"\x00\x01\x02" * 50)
    before = env.snapshot()
    result = run(["ingest", "--corpus", str(corpus), "--db", str(env.db)])
    assert result.exit_code != 0
    err = lines(result.stderr)
    assert [ln for ln in err if ln.startswith("Error: ")] and len(err) == 3, err
    assert sum(ln.startswith("Warning: skipped") for ln in err) == 2
    assert env.snapshot() == before


def _minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF with ``text`` in Helvetica (no PDF library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def test_cli_ingest_skips_each_bad_file_with_exactly_one_warning(env: Env) -> None:
    good_pdf = _minimal_pdf(
        "The Zorbian lighthouse keeper logged forty storms in the winter of 1911."
    )
    (env.corpus / "good.pdf").write_bytes(good_pdf)
    (env.corpus / "good.txt").write_text(
        "Plain notes about river ecology.\n\nA second paragraph.\n"
    )
    bad = {
        "binary.txt": b"\x7fELF\x02\x01\x01\x00\x00\x00" * 64,
        "latin1.txt": "Café crème brûlée is served daily.".encode("latin-1"),
        "zero.md": b"",
        "blank.md": b"  \n\n \t \n",
        "truncated.pdf": good_pdf[: len(good_pdf) // 2],
        "corrupt.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 8,
        "not-a-pdf.pdf": b"hello, I am plain text pretending to be a PDF",
    }
    for name, data in bad.items():
        (env.corpus / name).write_bytes(data)
    with (env.corpus / "huge.txt").open("wb") as f:  # 50 MB, sparse: instant to create
        f.truncate(50 * 1024 * 1024)
    bad["huge.txt"] = b""
    result = run(env.args("ingest"))
    assert result.exit_code == 0, result.output
    err = lines(result.stderr)
    warnings = [ln for ln in err if ln.startswith("Warning: skipped")]
    assert sorted(w.split()[2].rstrip(":") for w in warnings) == sorted(bad), warnings
    # Nothing else on stderr but the progress bar: no library log lines, no traceback.
    assert all(ln.startswith(("Warning: skipped", "Embedding paragraphs")) for ln in err), err
    assert "too large" in next(w for w in warnings if "huge.txt" in w)
    assert f"skipped {len(bad)} unreadable file(s)" in result.stdout
    sources = {m["source"] for m in env.snapshot().values()}
    assert sources == {"bhutan-qatar.md", "good.pdf", "good.txt"}


def test_one_10000_word_paragraph_becomes_subchunks_of_paragraph_1(env: Env) -> None:
    words = ("river", "mountain", "policy", "forum", "trade", "energy", "kingdom", "border")
    text = " ".join(
        words[(i * 7) % len(words)] + ("." if i % 23 == 22 else "") for i in range(10_000)
    )
    (env.corpus / "long.txt").write_text(text + "\n", encoding="utf-8")
    result = run(env.args("ingest"))
    assert result.exit_code == 0, result.output
    index = current(chunk_store_dir(env.settings))[0]  # type: ignore[index]
    rows = [r for r in range(index.count) if index.metadata[r]["source"] == "long.txt"]
    chunks = [index.metadata[r] for r in rows]
    assert len(chunks) > 10
    assert {m["paragraph"] for m in chunks} == {1}
    assert {m["n_chunks"] for m in chunks} == {len(chunks)}
    assert sorted(m["chunk_index"] for m in chunks) == list(range(len(chunks)))
    assert len({m["paragraph_id"] for m in chunks}) == 1
    # the whole text is stored once, on the first chunk
    in_order = sorted(rows, key=lambda r: index.metadata[r]["chunk_index"])
    assert [index.paragraph_texts[r] for r in in_order] == [text] + [""] * (len(chunks) - 1)
    # Searching a sub-chunk returns the whole paragraph once.
    hits = rag.retrieve("river mountain policy", k=3, settings=env.settings)
    long_hits = [p for p in hits if p.source == "long.txt"]
    assert len(long_hits) <= 1 and all(p.paragraph == 1 and p.text == text for p in long_hits)


def test_cli_status_without_index_is_not_an_error(env: Env, tmp_path: Path) -> None:
    result = run(["status", "--db", str(tmp_path / "nodb")])
    assert result.exit_code == 0 and "No index" in result.stdout


# -- the Python API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["", WHITESPACE, CONTROL_ONLY, HUGE_QUERY, None, 42, b"bytes"], ids=repr
)
def test_api_rejects_bad_queries_with_invalid_query_error(env: Env, query: Any) -> None:
    before = env.snapshot()
    with pytest.raises(InvalidQueryError):
        rag.retrieve(query, settings=env.settings)
    with pytest.raises(ValueError):  # InvalidQueryError is a ValueError too
        rag.ask(query, settings=env.settings)
    assert env.llm_calls == []
    assert env.snapshot() == before


def test_api_rejects_impossible_k(env: Env) -> None:
    for k in (0, -1, 1.5, "3"):
        with pytest.raises(InvalidQueryError, match="k must be"):
            rag.retrieve("Bhutan", k=k, settings=env.settings)  # type: ignore[arg-type]


def test_api_mixed_scripts_and_control_characters(env: Env) -> None:
    hits = rag.retrieve("Kathmandu\x00 Policy\x1b Forum", k=2, settings=env.settings)
    assert (hits[0].source, hits[0].paragraph) == ("bhutan-qatar.md", 3)
    assert len(rag.retrieve(MIXED, k=3, settings=env.settings)) <= 3
    ans = rag.ask(MIXED, settings=env.settings)
    assert ans.abstained and ans.text == rag.ABSTENTION_TEXT


def test_api_ingest_bad_corpus_paths(env: Env, tmp_path: Path) -> None:
    before = env.snapshot()
    (tmp_path / "empty").mkdir()
    for corpus in (tmp_path / "missing", env.corpus / SEED.name, tmp_path / "empty"):
        s = env.settings.model_copy(update={"corpus_dir": corpus})
        with pytest.raises(CorpusError):
            ingest(s, embedder=HashingEmbedder(model_name=index_model_name(s.embedding)))
    assert env.snapshot() == before


def test_api_search_without_index(tmp_path: Path) -> None:
    s = Settings(corpus_dir=tmp_path, db_dir=tmp_path / "nodb", data_dir=tmp_path / "data")
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        rag.HybridRetriever(settings=s, embedder=HashingEmbedder()).search("Bhutan")


def test_ingest_rebuild_stale_rebuilds_an_index_made_with_another_model(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scripts/run.sh` must not stop on an index an older default embedder built: plain
    `rag ingest` refuses with the --reset message, `--rebuild-stale` rebuilds it."""
    monkeypatch.setenv(
        "RAG_EMBEDDING__BACKEND",
        "torch" if "int8" in index_model_name(env.settings.embedding) else "onnx-int8",
    )
    refused = run(env.args("ingest"))
    assert refused.exit_code == 1 and "--reset" in refused.output
    rebuilt = run(env.args("ingest", "--rebuild-stale"))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilding it from the corpus" in rebuilt.output
    assert run(env.args("ingest")).exit_code == 0  # now consistent with the configured model
