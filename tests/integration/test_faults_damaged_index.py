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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from api.app import create_app
from rag.chain import AnswerChain
from rag.chunk_store import chunk_store_dir, read_manifest
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag_cli.app import app as cli_app
from tests.fakes import fake_verifier
from tests.unit.test_index_errors import DAMAGE, Env, fake_embedder
from tests.unit.test_index_errors import env as env  # the fixture: a good index, copied per case
from ui.app import ChatController

pytestmark = [pytest.mark.integration, pytest.mark.faults]

QUESTION = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
DAMAGED = r"^the index in .* is damaged \(.+\); rebuild it with `rag ingest --reset`"
ANSWER = (
    'Quote [P1]: "notes Dr. Tenzin Wangchuk, a specialist in Himalayan geopolitics at the '
    'Kathmandu Policy Forum"\nAnswer: He is affiliated with the Kathmandu Policy Forum.'
)


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
    """``rag ask`` builds its chain with this model instead of the embedded LLM."""
    monkeypatch.setattr(
        sys.modules["rag.chain"], "get_llm", lambda _s: FakeListChatModel(responses=[ANSWER])
    )


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


@pytest.mark.parametrize("damage", REFUSED)
def test_the_api_on_a_damaged_index_answers_503_naming_the_damage(env: Env, damage: str) -> None:
    s = damaged(env, damage)
    chain = chain_for(s)
    api = TestClient(create_app(s, chain=chain, retriever=chain.retriever))
    for resp in (
        api.post("/v1/retrieve", json={"query": "Kathmandu Policy Forum"}),
        api.post("/v1/answer", json={"question": QUESTION}),
        api.get("/v1/status"),
    ):
        assert re.search(DAMAGED, _api_error(resp))
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
