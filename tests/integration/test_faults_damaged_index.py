"""A damaged index, file kind by file kind, as ``rag ask``, the API and the UI show it (issue 26).

``tests/unit/test_index_errors.py`` covers ``rag status``/``search``/``ingest`` and the library;
here each damage of its ``DAMAGE`` table is made on a copy of a good index and the question
path is asked: the answer is the one line naming the damage and ``rag ingest --reset``, never a
traceback and never an answer read from half an index. Real Chroma in tmp folders, the fake
embedder, and a fake model (retrieval fails before any model call).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from api.app import create_app
from rag import chroma_files
from rag.chain import AnswerChain
from rag.chunk_store import chunk_store_dir, read_manifest
from rag.ingest import ingest
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import Chunk
from rag_cli.app import app as cli_app
from tests.fakes import affiliation_reply, clear_rag_env, fake_verifier, use_fake_embedder
from tests.unit.test_index_errors import DAMAGE, SEED, Env, fake_embedder
from tests.unit.test_index_errors import env as env  # the fixture: a good index, copied per case
from ui.app import ChatController

pytestmark = [pytest.mark.integration, pytest.mark.faults]

QUESTION = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
DAMAGED = r"^the index in .* is damaged \(.+\); rebuild it with `rag ingest --reset`"
ANSWER = affiliation_reply(1)


#: every file of a published chunk-index version (checked against a real one below)
KEYWORD_FILES = (
    "chunk_texts.bin",
    "chunk_texts.offsets.npy",
    "chunks.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "paragraph_texts.bin",
    "paragraph_texts.offsets.npy",
    "params.index.json",
    "vocab.index.json",
)


def _zero(path: Path) -> None:
    # an empty file (no paragraph spans several chunks here) gets zero bytes it never had
    path.write_bytes(b"\0" * (path.stat().st_size or 16))


def _half(path: Path) -> None:
    size = path.stat().st_size
    if size:
        os.truncate(path, size // 2)
    else:  # nothing to cut: a torn write that left bytes behind instead
        path.write_bytes(b"\x93NUMPY")


def _version_file(s: Settings, name: str) -> Path:
    return next(chunk_store_dir(s).glob("v*")) / name


#: the unit tests' damages (Chroma's database, the manifest) and each chunk-index file
#: truncated to half and zeroed
DAMAGES: dict[str, Callable[[Settings], None]] = {
    **DAMAGE,
    **{
        f"{name} {how}": (lambda s, n=name, f=fn: f(_version_file(s, n)))
        for name in KEYWORD_FILES
        for how, fn in (("halved", _half), ("zeroed", _zero))
    },
}
REFUSED = [d for d in DAMAGES if d != "chroma.sqlite3 emptied"]


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rag ask`` builds its chain with this model instead of the embedded LLM, and takes no
    lock of the embedded one (``llm_lock`` would load it, and probe it in a child process)."""
    chain = sys.modules["rag.chain"]
    monkeypatch.setattr(chain, "get_llm", lambda _s: FakeListChatModel(responses=[ANSWER]))
    monkeypatch.setattr(chain, "llm_lock", lambda _s: nullcontext())


def damaged(env: Env, damage: str) -> Settings:
    s = env.copy("damaged")
    DAMAGES[damage](s)
    s.retrieval.min_relevance = 0.05  # the lexical fake embedder scores lower than MiniLM
    return s


def chain_for(s: Settings) -> AnswerChain:
    retriever = HybridRetriever(settings=s, embedder=fake_embedder())
    return AnswerChain(
        settings=s,
        retriever=retriever,
        llm=FakeListChatModel(responses=[ANSWER]),
        verifier=fake_verifier(),
    )


@pytest.mark.parametrize("damage", DAMAGES)
def test_rag_ask_on_a_damaged_index(env: Env, fake_llm: None, damage: str) -> None:
    s = damaged(env, damage)
    result = CliRunner().invoke(
        cli_app,
        ["ask", QUESTION, "--corpus", str(s.corpus_dir), "--db", str(s.index_dir)],
        env={"RAG_DATA_DIR": str(s.data_dir)},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if damage == "chroma.sqlite3 emptied":
        # an empty file is an empty database to Chroma: `rag ask` indexes the corpus again
        # first (as for a new index), and answers from the rebuilt index (the fake model's
        # answer, or the abstention: the CLI's relevance floor is set for the real embedder)
        assert result.exit_code == 0, result.output
        assert "Indexed 1 documents" in result.stderr, result.output
        return
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert re.search(DAMAGED, lines[0].removeprefix("Error: ")), lines[0]
    assert "Kathmandu Policy Forum" not in result.stdout


def _api_error(resp: Any) -> str:
    assert resp.status_code == 503, resp.text
    message = str(resp.json()["error"]["message"])
    assert "\n" not in message and "Traceback" not in message
    return message


def api_for(s: Settings) -> TestClient:
    chain = chain_for(s)
    return TestClient(create_app(s, chain=chain, retriever=chain.retriever))


def _api_errors(api: TestClient) -> list[str]:
    """The error messages of a search, an answer and the status: each a 503, one clean line."""
    return [
        _api_error(resp)
        for resp in (
            api.post("/v1/retrieve", json={"query": "Kathmandu Policy Forum"}),
            api.post("/v1/answer", json={"question": QUESTION}),
            api.get("/v1/status"),
        )
    ]


@pytest.mark.parametrize("damage", REFUSED)
def test_the_api_on_a_damaged_index_answers_503_naming_the_damage(env: Env, damage: str) -> None:
    s = damaged(env, damage)
    api = api_for(s)
    for message in _api_errors(api):
        assert re.search(DAMAGED, message)
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize("damage", REFUSED)
def test_the_ui_on_a_damaged_index_says_how_to_rebuild(env: Env, damage: str) -> None:
    s = damaged(env, damage)
    ctl = ChatController(s, chain_for(s))
    *_, (chat, _history, _box, answer_json) = list(ctl.respond(QUESTION, [], []))
    reply = str(chat[-1]["content"])
    assert answer_json is None
    assert "is damaged" in reply and "rag ingest --reset" in reply, reply
    assert "Kathmandu Policy Forum" not in reply and "Traceback" not in reply
    status = ctl.status_html()
    assert "is damaged" in status and "rag ingest --reset" in status, status


def test_every_file_of_the_chunk_index_is_damaged_in_turn(env: Env) -> None:
    # when the chunk index's layout changes, KEYWORD_FILES (and so DAMAGES) must follow
    manifest = read_manifest(chunk_store_dir(env.good)) or {}
    assert sorted(manifest["files"]) == sorted(KEYWORD_FILES)


# -- Chroma's own vector (HNSW) files ------------------------------------------------------
#
# Chroma writes a collection's HNSW files once 1,000 chunks are in its log, so these cases
# use an index of the seed document plus 1,100 filler paragraphs. Before the ingest recorded
# their checksums (rag.chroma_files), a damaged file gave a SIGSEGV inside Chroma or a dense
# ranking read from damaged vectors (bench/RESULTS.md section 14).

VECTOR_FILES = (
    "data_level0.bin",
    "header.bin",
    "index_metadata.pickle",
    "length.bin",
    "link_lists.bin",
)
FILLER_PARAGRAPHS = 1100


def _flip(path: Path) -> None:
    """Four bytes in the middle of the file inverted: same size, different content."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(size // 2)
        got = fh.read(4)
        fh.seek(size // 2)
        fh.write(bytes(b ^ 0xFF for b in got))


def _vector_file(s: Settings, name: str) -> Path:
    record = (read_manifest(chunk_store_dir(s)) or {})["chroma_files"]
    return s.index_dir / record["segment"] / name


VECTOR_DAMAGES: dict[str, Callable[[Settings], None]] = {
    f"{name} {how}": (lambda s, n=name, f=fn: f(_vector_file(s, n)))
    for name in VECTOR_FILES
    for how, fn in (("halved", _half), ("zeroed", _zero), ("bytes flipped", _flip))
}


@pytest.fixture(scope="module")
def big_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A good index big enough for Chroma to have written its vector files (built once)."""
    tmp = tmp_path_factory.mktemp("big")
    corpus = tmp / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    (corpus / "filler.md").write_text(
        "\n\n".join(
            f"Filler note {i}: part{i} of batch{i % 97} in series{i % 13}."
            for i in range(FILLER_PARAGRAPHS)
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as mp:
        clear_rag_env(mp)
        good = Settings(corpus_dir=corpus, db_dir=tmp / "good", data_dir=tmp / "data")
        ingest(good, embedder=fake_embedder(good))
    return good


@pytest.fixture
def big(big_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Like ``env``, over the big index: copies of it are damaged."""
    clear_rag_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    use_fake_embedder(monkeypatch)
    return Env(tmp_path, big_index.corpus_dir, big_index)


def vector_damaged(big: Env, damage: str) -> Settings:
    s = big.copy("damaged")
    VECTOR_DAMAGES[damage](s)
    s.retrieval.min_relevance = 0.05
    return s


def _cli(s: Settings, *args: str) -> Any:
    result = CliRunner().invoke(
        cli_app,
        [*args, "--corpus", str(s.corpus_dir), "--db", str(s.index_dir)],
        env={"RAG_DATA_DIR": str(s.data_dir)},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    return result


def _one_damaged_line(result: Any, name: str) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    line = lines[0].removeprefix("Error: ")
    assert re.search(DAMAGED, line), line
    assert f"Chroma's vector file {name}" in line, line
    return line


def test_the_vector_files_are_recorded_at_ingest(big_index: Settings) -> None:
    # the big index is big enough: Chroma wrote every file of its vector segment
    record = (read_manifest(chunk_store_dir(big_index)) or {})["chroma_files"]
    assert sorted(record["files"]) == sorted(VECTOR_FILES)
    assert all(size > 0 for size, _crc in record["files"].values())


def test_an_undamaged_copy_answers(big: Env, fake_llm: None) -> None:
    s = big.copy("intact")
    result = _cli(s, "ask", QUESTION)
    assert result.exit_code == 0, result.output
    assert "damaged" not in result.output
    status = _cli(s, "status")
    assert status.exit_code == 0, status.output
    assert f"filler.md: {FILLER_PARAGRAPHS} paragraphs" in status.stdout, status.stdout


@pytest.mark.parametrize("damage", VECTOR_DAMAGES)
def test_rag_ask_and_status_on_damaged_vector_files(big: Env, fake_llm: None, damage: str) -> None:
    s = vector_damaged(big, damage)
    name = damage.split()[0]
    ask = _cli(s, "ask", QUESTION)
    _one_damaged_line(ask, name)
    assert "Kathmandu Policy Forum" not in ask.stdout
    _one_damaged_line(_cli(s, "status"), name)


@pytest.mark.parametrize("damage", VECTOR_DAMAGES)
def test_the_api_and_the_ui_on_damaged_vector_files(big: Env, damage: str) -> None:
    s = vector_damaged(big, damage)
    api = api_for(s)
    for message in _api_errors(api):
        assert "Chroma's vector file" in message
    assert api.get("/healthz").status_code == 200
    ctl = ChatController(s, chain_for(s))
    *_, (chat, _history, _box, answer_json) = list(ctl.respond(QUESTION, [], []))
    reply = str(chat[-1]["content"])
    assert answer_json is None
    assert "is damaged" in reply and "rag ingest --reset" in reply, reply
    assert "Kathmandu Policy Forum" not in reply and "Traceback" not in reply


def test_ingest_on_damaged_vector_files_asks_for_reset_and_reset_rebuilds(big: Env) -> None:
    # header.bin halved crashed the process inside Chroma (SIGSEGV) before the check
    s = vector_damaged(big, "header.bin halved")
    _one_damaged_line(_cli(s, "ingest"), "header.bin")
    result = _cli(s, "ingest", "--reset")
    assert result.exit_code == 0, result.output
    # the fake embedder's many tied similarities make the dense order vary between builds:
    # the rebuilt index is checked for the passage, not for the whole order
    hits = HybridRetriever(settings=s, embedder=fake_embedder()).search(
        "Kathmandu Policy Forum", k=5
    )
    assert any("Kathmandu Policy Forum" in p.text for p in hits), hits
    status = _cli(s, "status")
    assert status.exit_code == 0 and f"{FILLER_PARAGRAPHS} paragraphs" in status.stdout


def test_vectors_written_after_the_publish_are_not_called_damaged(big: Env) -> None:
    # an ingest that stopped half way (killed, disk full) leaves Chroma's files rewritten
    # after the last publish: the last complete index keeps answering
    s = big.copy("resumed")
    store = ChromaStore(settings=s, embedding_model=fake_embedder().model_name)
    emb = fake_embedder()
    chunks = [
        Chunk(
            id=f"extra-{i}",
            paragraph_id=f"extra.md#{i}",
            source="extra.md",
            paragraph=i,
            section="",
            text=f"Extra note {i}",
            chunk_index=0,
            n_chunks=1,
            paragraph_text=f"Extra note {i}",
            start=0,
            end=12,
        )
        for i in range(FILLER_PARAGRAPHS)
    ]
    for i in range(0, len(chunks), 128):
        part = chunks[i : i + 128]
        store.add(part, emb.embed_documents([c.text for c in part]))
    before = (read_manifest(chunk_store_dir(s)) or {})["chroma_files"]
    assert chroma_files.vector_segment(s) != (before["segment"], before["seq_id"])
    hits = HybridRetriever(settings=s, embedder=fake_embedder()).search(
        "Kathmandu Policy Forum", k=3
    )
    assert hits and all(not p.source.startswith("extra") for p in hits)
    assert _cli(s, "status").exit_code == 0
