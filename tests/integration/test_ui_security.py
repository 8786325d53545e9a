"""The web surface of a really launched UI server: file routes, binding, auth, concurrency.

Uses a fake chain (no model): what is tested is the server, not the answers.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio  # noqa: E402,F401
import gradio_client  # noqa: E402,F401
import pytest
from pydantic import SecretStr  # noqa: E402

from rag.settings import Settings, UISettings  # noqa: E402
from rag.types import Answer, AnswerEvent, Citation  # noqa: E402
from tests.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class EchoChain:
    """Answers "<question> | prior: <user turns of *this* conversation>" after a short delay,
    so concurrent sessions overlap and any cross-talk between histories shows."""

    def __init__(self, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def stream(
        self, question: str, history: Sequence[dict[str, str]] | None = None
    ) -> Iterator[AnswerEvent]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            yield AnswerEvent("status", "Searching the sources…")
            for _ in range(3):
                time.sleep(self.delay_s / 3)
                yield AnswerEvent("draft", "tok")
            prior = [h["content"] for h in (history or []) if h["role"] == "user"]
            text = f"{question} | prior: {'; '.join(prior) or '-'}"
            para = f"Paragraph for {question}."
            cite = Citation(1, "doc.md", 1, "", para, para, 0, len(para))
            yield AnswerEvent(
                "final",
                answer=Answer(
                    f"{text} [1]", False, (cite,), question=question, standalone_question=question
                ),
            )
        finally:
            with self._lock:
                self.active -= 1


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """A raw GET: the path is sent byte for byte (no client-side normalisation of ../)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_post(port: int, path: str, body: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _settings(tmp: Path, **ui: Any) -> Settings:
    return Settings(
        corpus_dir=ROOT / "corpus",
        data_dir=tmp / "data",
        db_dir=tmp / "db",
        ui=UISettings(port=free_port(), **ui),
    )


@pytest.fixture(scope="module")
def chain() -> EchoChain:
    return EchoChain()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chain: EchoChain) -> Iterator[Any]:
    from ui.app import launch

    settings = _settings(tmp_path_factory.mktemp("ui-sec"))
    demo = launch(settings, chain, block=False, quiet=True)
    try:
        yield demo, settings
    finally:
        demo.close()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ui.app import launch

    settings = _settings(
        tmp_path_factory.mktemp("ui-auth"), username="ann", password=SecretStr("correct horse")
    )
    demo = launch(settings, EchoChain(0.0), block=False, quiet=True)
    try:
        yield demo, settings
    finally:
        demo.close()


TRAVERSALS = [
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=%2fetc%2fpasswd",
    "/gradio_api/file=../../../../../../etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/gradio_api/file=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/gradio_api/file=....//....//....//etc/passwd",
    "/gradio_api/file=..\\..\\..\\..\\etc\\passwd",
    "/gradio_api/file=/proc/self/environ",
    "/file=/etc/passwd",
    "/file=../../../../etc/passwd",
    "/static/../../../../etc/passwd",
    "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/../../../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_file_routes_refuse_system_files_and_traversal(server: Any, path: str) -> None:
    demo, settings = server
    status, body = http_get(settings.ui.port, path)
    assert status in (400, 401, 403, 404), (path, status, body[:200])
    assert b"root:" not in body


def test_project_files_are_not_served(server: Any) -> None:
    _, settings = server
    corpus_file = (ROOT / "corpus" / "bhutan-qatar.md").resolve()
    for path in (
        f"/gradio_api/file={corpus_file}",
        "/gradio_api/file=corpus/bhutan-qatar.md",
        f"/gradio_api/file={(ROOT / 'pyproject.toml').resolve()}",
        "/gradio_api/file=pyproject.toml",
        f"/gradio_api/file={(ROOT / 'rag' / 'settings.py').resolve()}",
    ):
        status, body = http_get(settings.ui.port, path)
        assert status in (403, 404), (path, status)
        assert b"Kathmandu" not in body and b"[project]" not in body


def test_binds_loopback_only_by_default(server: Any) -> None:
    demo, settings = server
    assert settings.ui.host == "127.0.0.1"
    assert demo.server_name == "127.0.0.1"
    port_hex = f":{settings.ui.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if local.endswith(port_hex) and state == "0A":  # LISTEN
                listening.append(local.split(":")[0])
    assert listening, "the server is not listening"
    assert set(listening) == {"0100007F"}, listening  # 127.0.0.1 only, not 0.0.0.0
    assert demo.share_url is None


def test_page_and_api_are_served(server: Any) -> None:
    _, settings = server
    status, body = http_get(settings.ui.port, "/")
    assert status == 200 and b"<html" in body.lower()
    status, body = http_get(settings.ui.port, "/gradio_api/info")
    assert status == 200 and b"/ask" in body


def test_auth_refuses_unauthenticated_requests(auth_server: Any) -> None:
    _, settings = auth_server
    port = settings.ui.port
    for path in (
        "/config",
        "/gradio_api/info",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/queue/status",
        "/gradio_api/queue/data?session_hash=abcdef",
    ):
        status, body = http_get(port, path)
        assert status in (401, 403) or 300 <= status < 400, (path, status)
        assert b"Kathmandu" not in body and b"named_endpoints" not in body
    for path, payload in (
        ("/gradio_api/call/ask", '{"data": ["x"]}'),
        (
            "/gradio_api/queue/join",
            '{"data": ["x", [], []], "fn_index": 1, "session_hash": "abcdef"}',
        ),
        ("/gradio_api/run/ask", '{"data": ["x"]}'),
    ):
        status, body = http_post(port, path, payload)
        assert status in (401, 403, 404) or 300 <= status < 400, (path, status)
        assert b"prior:" not in body
    # the page itself is only the login shell: no app config, no example questions
    status, body = http_get(port, "/")
    assert b"Which institution is Dr. Tenzin Wangchuk" not in body


def test_auth_lets_the_right_user_in(auth_server: Any) -> None:
    from gradio_client import Client

    _, settings = auth_server
    url = f"http://127.0.0.1:{settings.ui.port}/"
    with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own auth error
        Client(url, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(url, auth=("ann", "wrong"), verbose=False)
    client = Client(url, auth=("ann", "correct horse"), verbose=False)
    result = client.predict("hello", api_name="/ask")
    assert result[-1]["answer"].startswith("hello | prior: -")


def test_concurrent_sessions_get_their_own_answers(server: Any, chain: EchoChain) -> None:
    """4 gradio_client sessions at once, two turns each: no errors, no cross-talk."""
    from gradio_client import Client

    _, settings = server
    url = f"http://127.0.0.1:{settings.ui.port}/"
    n = 4
    clients = [Client(url, verbose=False) for _ in range(n)]
    results: dict[int, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def session(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            first = clients[i].predict(f"question {i}", api_name="/ask")
            second = clients[i].predict(f"follow-up {i}", api_name="/ask")
            results[i] = [first[-1], second[-1], second[0]]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    chain.max_active = 0
    threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == list(range(n))
    for i, (first, second, chat) in results.items():
        assert first["answer"] == f"question {i} | prior: - [1]"
        assert second["answer"] == f"follow-up {i} | prior: question {i} [1]"
        assert first["citations"][0]["quote"] == f"Paragraph for question {i}."
        shown = " ".join(
            part["text"] if isinstance(part, dict) else str(part)
            for m in chat
            for part in (m["content"] if isinstance(m["content"], list) else [m["content"]])
        )
        assert f"question {i}" in shown
        assert not any(f"question {j}" in shown for j in range(n) if j != i)
    # the sessions really overlapped (the queue ran them concurrently)
    assert chain.max_active >= 2
