"""A Chroma server (``RAG_CHROMA_URL``) that is down, dies mid-session, or comes back (issue 26).

Each case gets its own ``chroma run`` on a free port with a throwaway data folder and stops it
after (started while the case before it ran: a server takes ~1 s to answer). The CLI is run
in-process, the API through its ASGI app, the UI through its chat handler; answers use the real
chain with a fake model (retrieval fails before any model call), and the fake embedder stands
in for the embedding model.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from api.app import create_app
from rag.chain import AnswerChain
from rag.ingest import ingest
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag_cli.app import app as cli_app
from tests.fakes import (
    affiliation_reply,
    clear_rag_env,
    fake_embedder,
    fake_verifier,
    use_fake_embedder,
)
from tests.servers import free_port, launch_chroma, start_chroma, stop, wait_for_chroma
from ui.app import ChatController

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "corpus" / "bhutan-qatar.md"
QUERY = "Kathmandu Policy Forum"
QUESTION = "Which institution is Dr. Tenzin Wangchuk affiliated with?"


def unreachable(url: str) -> str:
    """The pattern of the one line a user must read."""
    return (
        rf"cannot reach the Chroma server at {re.escape(url)} \(RAG_CHROMA_URL\): start it, "
        "or correct RAG_CHROMA_URL"
    )


@dataclass
class Server:
    """One ``chroma run`` process; ``kill`` and ``start`` keep its port and data folder."""

    base: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            self.proc = start_chroma(self.base / "db", self.port, self.base / "server.log")
        except RuntimeError as exc:
            pytest.fail(str(exc))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # no goodbye: as a crash or an OOM kill
        self.proc.wait(timeout=15)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_rag_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    use_fake_embedder(monkeypatch)


class Spares:
    """``chroma run`` processes started one case ahead: ``take`` hands out the one started
    last time (waiting until it answers) and starts the next."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.count = 0
        self.next: Server | None = None

    def _launch(self) -> Server:
        self.count += 1
        srv = Server(self.base / f"chroma-{self.count}")
        srv.base.mkdir()
        srv.proc = launch_chroma(srv.base / "db", srv.port, srv.base / "server.log")
        return srv

    def take(self) -> Server:
        srv, self.next = self.next or self._launch(), self._launch()
        assert srv.proc is not None
        try:
            wait_for_chroma(srv.proc, srv.port, srv.base / "server.log")
        except RuntimeError as exc:
            pytest.fail(str(exc))
        return srv

    def close(self) -> None:
        if self.next is not None and self.next.proc is not None:
            stop(self.next.proc)


@pytest.fixture(scope="module")
def spares(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spares]:
    pool = Spares(tmp_path_factory.mktemp("chroma-servers"))
    yield pool
    pool.close()


@pytest.fixture
def server(spares: Spares, clean_env: None) -> Iterator[Server]:
    """A running server with an empty data folder, this case's own."""
    srv = spares.take()
    yield srv
    if srv.proc is not None:
        stop(srv.proc)


def settings_for(url: str, tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    if not corpus.exists():
        corpus.mkdir()
        shutil.copy(SEED, corpus / SEED.name)
    s = Settings(
        corpus_dir=corpus, data_dir=tmp_path / "data", db_dir=tmp_path / "unused", chroma_url=url
    )
    s.retrieval.min_relevance = 0.05  # the lexical fake embedder scores lower than MiniLM
    return s


@dataclass
class App:
    """The API and the UI handler of one running app, over one retriever and chain."""

    settings: Settings
    api: TestClient
    ui: ChatController


def make_app(settings: Settings) -> App:
    retriever = HybridRetriever(settings=settings, embedder=fake_embedder())
    answer = affiliation_reply(1)
    chain = AnswerChain(
        settings=settings,
        retriever=retriever,
        llm=FakeListChatModel(responses=[answer]),
        verifier=fake_verifier(),
    )
    api = TestClient(create_app(settings, chain=chain, retriever=retriever))
    return App(settings, api, ChatController(settings, chain))


def api_error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    message = resp.json()["error"]["message"]
    assert "\n" not in message and "Traceback" not in message
    return str(message)


def ui_reply(ctl: ChatController) -> tuple[str, Any]:
    """The last chat message the UI shows for QUESTION, and the answer JSON (None on error)."""
    *_, (chat, _history, _box, answer_json) = list(ctl.respond(QUESTION, [], []))
    return str(chat[-1]["content"]), answer_json


def retrieved(client: TestClient) -> list[tuple[str, int]]:
    resp = client.post("/v1/retrieve", json={"query": QUERY, "k": 3})
    assert resp.status_code == 200, resp.text
    return [(p["source"], p["paragraph"]) for p in resp.json()["passages"]]


# -- down at start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["status"], ["search", QUERY], ["ask", QUESTION], ["serve", "--port", "0"], ["ui"]],
    ids=["status", "search", "ask", "serve", "ui"],
)
def test_down_at_start_the_command_says_so_in_one_line(
    tmp_path: Path, clean_env: None, args: list[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    s = settings_for(url, tmp_path)
    result = CliRunner().invoke(
        cli_app,
        [*args, "--corpus", str(s.corpus_dir)],
        env={"RAG_CHROMA_URL": url, "RAG_DATA_DIR": str(s.data_dir)},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert re.fullmatch(r"Error: " + unreachable(url) + r".*", lines[0]), lines[0]


def test_down_at_start_the_api_serves_health_and_answers_503_until_it_is_up(
    tmp_path: Path, clean_env: None
) -> None:
    late = Server(tmp_path / "chroma")
    app = make_app(settings_for(late.url, tmp_path))
    assert app.api.get("/healthz").json() == {"status": "ok"}
    for resp in (
        app.api.post("/v1/retrieve", json={"query": QUERY}),
        app.api.post("/v1/answer", json={"question": QUESTION}),
        app.api.get("/v1/status"),
    ):
        assert re.match(unreachable(late.url), api_error(resp, 503))
    reply, answer = ui_reply(app.ui)
    assert answer is None and re.search(unreachable(late.url), reply), reply
    # the server comes up and is indexed: the same app answers, not restarted
    late.base.mkdir()
    late.start()
    try:
        ingest(app.settings, embedder=fake_embedder())
        assert retrieved(app.api)[0] == ("bhutan-qatar.md", 3)
        reply, answer = ui_reply(app.ui)
        assert answer is not None, reply
    finally:
        assert late.proc is not None
        stop(late.proc)


# -- killed mid-session, then restarted ------------------------------------------------------


@pytest.fixture
def running(server: Server, tmp_path: Path) -> App:
    """An app serving an index held by the server."""
    s = settings_for(server.url, tmp_path)
    ingest(s, embedder=fake_embedder(s))
    app = make_app(s)
    assert retrieved(app.api)[0] == ("bhutan-qatar.md", 3)
    return app


def test_killed_mid_session_the_api_answers_503_and_keeps_serving(
    server: Server, running: App
) -> None:
    server.kill()
    for resp in (
        running.api.post("/v1/retrieve", json={"query": QUERY}),
        running.api.post("/v1/answer", json={"question": QUESTION}),
        running.api.post(
            "/v1/chat/completions",
            json={"model": "groundedchat", "messages": [{"role": "user", "content": QUESTION}]},
        ),
        running.api.get("/v1/status"),
    ):
        assert re.match(unreachable(server.url), api_error(resp, 503))
    # the server itself keeps serving
    assert running.api.get("/healthz").json() == {"status": "ok"}
    assert running.api.get("/v1/models").status_code == 200


def test_killed_mid_session_the_ui_chat_names_the_cause(server: Server, running: App) -> None:
    reply, answer = ui_reply(running.ui)
    assert answer is not None, reply
    server.kill()
    reply, answer = ui_reply(running.ui)
    assert answer is None
    assert re.search(unreachable(server.url), reply), reply
    assert "Traceback" not in reply


def test_restarted_on_the_same_port_and_data_the_next_request_succeeds(
    server: Server, running: App
) -> None:
    before = retrieved(running.api)
    server.kill()
    api_error(running.api.post("/v1/retrieve", json={"query": QUERY}), 503)
    server.start()  # same port, same data folder; the app is not restarted
    assert retrieved(running.api) == before
    assert running.api.get("/v1/status").json()["chunks"] > 0
    reply, answer = ui_reply(running.ui)
    assert answer is not None, reply
    assert ("bhutan-qatar.md", 3) in {(c["source"], c["paragraph"]) for c in answer["citations"]}


def test_restarted_without_a_request_in_between(server: Server, running: App) -> None:
    # the client's pooled connection to the dead process must not fail the first request
    before = retrieved(running.api)
    server.kill()
    server.start()
    assert retrieved(running.api) == before


def test_restarted_on_an_empty_data_folder_says_the_index_must_be_rebuilt(
    server: Server, running: App
) -> None:
    server.kill()
    shutil.rmtree(server.base / "db")  # the server's data is lost
    server.start()
    message = api_error(running.api.post("/v1/retrieve", json={"query": QUERY}), 503)
    assert re.match(
        rf"the index in {re.escape(server.url)} is damaged \(the keyword index is there but "
        r"Chroma holds no collection\); rebuild it with `rag ingest --reset`",
        message,
    ), message
    reply, answer = ui_reply(running.ui)
    assert answer is None and "rag ingest --reset" in reply, reply
    ingest(running.settings, reset=True, embedder=fake_embedder())
    assert retrieved(running.api)[0] == ("bhutan-qatar.md", 3)  # the app was not restarted
