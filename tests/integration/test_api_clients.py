"""The HTTP API as developers use it: a real `rag serve` process on 127.0.0.1 with the real
models on the seed corpus, called by clients no one here wrote (httpx, the official ``openai``
client, LangChain's ``ChatOpenAI``).

The server runs with a bearer token, so every call here also checks that the token is accepted.
Real LLM answers are kept to a handful (the machine is shared).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, run_rag

pytestmark = [pytest.mark.integration, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "integration-test-token"
WANGCHUK = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
INDEPENDENCE = "In what year did Bhutan gain its independence?"
# The seed article's paragraph that says where Dr. Wangchuk works (its 3rd body paragraph).
WANGCHUK_PARAGRAPH = 3


@dataclass
class Server:
    url: str
    port: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def server_env(tmp: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "RAG_CORPUS_DIR": str(ROOT / "corpus"),
            "RAG_DATA_DIR": str(tmp / "data"),
            "RAG_DB_DIR": str(tmp / "db"),
            "RAG_MODELS_DIR": str(ROOT / "data" / "models"),
            "RAG_API__TOKEN": TOKEN,
            "RAG_API__PORT": str(port),
        }
    )
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("api")
    port = free_port()
    log = tmp / "server.log"
    env = server_env(tmp, port)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag_cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", port, log, env, proc)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rag serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{srv.url}/healthz", headers=srv.auth, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not start within 300 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- REST with httpx ------------------------------------------------------------------------


def test_status_models_and_retrieve(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as c:
        status = c.get("/v1/status").json()
        assert status["exists"] and status["chunks"] > 0
        assert "bhutan-qatar.md" in status["documents"]
        assert status["embedding_model"] == status["configured_model"]  # no --reset needed
        assert status["embedding_model"].startswith("all-MiniLM-L6-v2")
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["groundedchat"]

        resp = c.post("/v1/retrieve", json={"query": "Kathmandu Policy Forum", "k": 3})
        assert resp.status_code == 200, resp.text
        passages = resp.json()["passages"]
        assert len(passages) == 3
        top = passages[0]
        assert top["source"] == "bhutan-qatar.md" and top["paragraph"] == WANGCHUK_PARAGRAPH
        assert "Kathmandu Policy Forum" in top["text"]
        assert top["dense_rank"] is not None and top["bm25_rank"] is not None


def test_answer_cites_the_paragraph_that_says_it(server: Server) -> None:
    resp = httpx.post(
        f"{server.url}/v1/answer", json={"question": WANGCHUK}, headers=server.auth, timeout=300
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert not body["abstained"], body
    assert "Kathmandu Policy Forum" in body["answer"]
    cited = [c for c in body["citations"] if f"[{c['marker']}]" in body["answer"]]
    assert any(
        c["source"] == "bhutan-qatar.md"
        and c["paragraph"] == WANGCHUK_PARAGRAPH
        and "Kathmandu Policy Forum" in c["quote"]
        for c in cited
    ), body["citations"]
    for c in body["citations"]:
        assert c["quote"] in c["text"]  # the quote is verbatim in the cited paragraph


def test_answer_stream_is_progress_then_the_verified_answer(server: Server) -> None:
    events: list[tuple[str, dict]] = []
    with httpx.stream(
        "POST",
        f"{server.url}/v1/answer",
        json={"question": INDEPENDENCE, "stream": True},
        headers=server.auth,
        timeout=300,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                assert name is not None
                events.append((name, json.loads(line[len("data: ") :])))
    names = [n for n, _ in events]
    assert names[-1] == "final", names
    assert "status" in names and "passages" in names and "draft" in names
    assert names.index("passages") < names.index("draft") < names.index("final")
    for n, data in events:
        if n == "draft":  # progress only: the unverified draft text is never sent
            assert set(data) == {"tokens", "message"}
    final = events[-1][1]
    assert not final["abstained"] and "1949" in final["answer"], final
    assert final["citations"] and all(c["quote"] in c["text"] for c in final["citations"])


# -- the official openai client ---------------------------------------------------------------


def test_openai_client_plain_and_streaming(server: Server) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=300)
    assert [m.id for m in client.models.list()] == ["groundedchat"]

    completion = client.chat.completions.create(
        model="groundedchat", messages=[{"role": "user", "content": WANGCHUK}]
    )
    content = completion.choices[0].message.content or ""
    assert "Kathmandu Policy Forum" in content and "[1]" in content
    extra = completion.model_extra or {}
    assert extra["abstained"] is False
    assert any(c["paragraph"] == WANGCHUK_PARAGRAPH for c in extra["citations"])

    stream = client.chat.completions.create(
        model="groundedchat",
        messages=[{"role": "user", "content": INDEPENDENCE}],
        stream=True,
    )
    parts, finish, citations = [], None, None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        citations = (chunk.model_extra or {}).get("citations", citations)
    text = "".join(parts)
    assert "1949" in text and finish == "stop"
    assert citations and all(c["quote"] in c["text"] for c in citations)

    off_topic = client.chat.completions.create(  # abstains before any model call
        model="groundedchat",
        messages=[{"role": "user", "content": "How long should sourdough bread proof?"}],
    )
    assert off_topic.choices[0].message.content == "The source does not say."

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.chat.completions.create(
            model="groundedchat", messages=[{"role": "user", "content": "  "}]
        )


# -- LangChain's ChatOpenAI --------------------------------------------------------------------


def test_langchain_chatopenai_plain_and_streaming(server: Server) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="groundedchat",
        base_url=f"{server.url}/v1",
        api_key=TOKEN,
        max_retries=0,
        timeout=300,
    )
    reply = llm.invoke([SystemMessage("You are a helpful assistant."), HumanMessage(WANGCHUK)])
    assert isinstance(reply, AIMessage) and "Kathmandu Policy Forum" in str(reply.content)

    streamed = "".join(str(chunk.content) for chunk in llm.stream(INDEPENDENCE))
    assert "1949" in streamed


# -- the service guarantees ---------------------------------------------------------------------


def test_the_token_is_enforced_on_every_route(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()  # the docs are open
    routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]
    assert {p for _, p in routes} >= {
        "/healthz",
        "/v1/status",
        "/v1/models",
        "/v1/retrieve",
        "/v1/answer",
        "/v1/chat/completions",
    }
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer not-the-token"}):
                resp = c.request(method, path, headers=headers, json={})
                assert resp.status_code == 401, (method, path, resp.text)
                assert resp.json()["error"]["code"] == 401
            # with the token: the empty body is refused as bad input, no answer is generated
            resp = c.request(method, path, headers=server.auth, json={})
            assert resp.status_code in (200, 400), (method, path, resp.text)


def test_binds_loopback_only_and_logs_request_ids(server: Server) -> None:
    port_hex = f":{server.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if local.endswith(port_hex) and state == "0A":  # LISTEN
                listening.append(local.split(":")[0])
    assert listening == ["0100007F"], listening  # 127.0.0.1 only, not 0.0.0.0

    resp = httpx.get(
        f"{server.url}/v1/status",
        headers={**server.auth, "X-Request-ID": "itest-req-42"},
        timeout=60,
    )
    assert resp.headers["x-request-id"] == "itest-req-42"
    deadline = time.monotonic() + 10
    while "[itest-req-42]" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next(ln for ln in server.log.read_text().splitlines() if "[itest-req-42]" in ln)
    assert "GET /v1/status 200" in line


def test_a_second_server_on_the_same_port_fails_with_one_line(server: Server) -> None:
    r = run_rag("serve", env=server.env, timeout=300, cwd=ROOT)
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert errors == [errors[0]] and f"cannot serve on 127.0.0.1:{server.port}" in errors[0]
    assert "Traceback" not in r.stderr
