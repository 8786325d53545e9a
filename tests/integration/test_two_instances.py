"""Two app instances over one Chroma server, with nothing local in common.

Starts a real ``chroma run`` and two ``rag serve`` processes on different ports, each with its
own data folder (as on two machines). The first indexes the corpus at start; the second finds
the collection and derives its keyword index from it. A document added, then removed, by
``rag ingest`` with the first instance's settings reaches the second one's search without a
restart, within ``RAG_CHROMA__SYNC_S`` plus a rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port, run_rag, stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUOKKA = "Where is the quokka festival held?"
EXTRA = "The quokka festival of the Kimberley Trust is held every March in Perth.\n"
WAIT_S = 120.0  # the bound checked here: generous, for a loaded CI machine (measured: ~2 s)


@dataclass
class Instance:
    url: str
    env: dict[str, str]

    def retrieve(self, query: str, k: int = 3) -> list[dict[str, Any]]:
        resp = httpx.post(f"{self.url}/v1/retrieve", json={"query": query, "k": k}, timeout=120)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["passages"])

    def cited(self, query: str) -> list[tuple[str, int]]:
        return [(p["source"], p["paragraph"]) for p in self.retrieve(query)]


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start within 300 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _start(
    cmd: list[str], env: dict[str, str] | None, log: Path, request: pytest.FixtureRequest
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    request.addfinalizer(lambda: stop(proc))
    return proc


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[Instance, Instance]]:
    base = tmp_path_factory.mktemp("two-instances")
    port = free_port()
    chroma = f"http://127.0.0.1:{port}"
    chroma_cli = str(Path(sys.executable).parent / "chroma")  # chromadb's script in the venv
    cmd = [chroma_cli, "run", "--path", str(base / "chroma"), "--port", str(port)]
    proc = _start([*cmd, "--host", "127.0.0.1"], None, base / "chroma.log", request)
    _wait(f"{chroma}/api/v2/heartbeat", proc, base / "chroma.log", "chroma run")
    corpus = base / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    out = []
    for name in ("a", "b"):  # one after the other: a indexes the corpus, b finds it indexed
        api_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "RAG_CHROMA_URL": chroma,
            "RAG_CORPUS_DIR": str(corpus),
            "RAG_DATA_DIR": str(base / name),
            "RAG_MODELS_DIR": str(ROOT / "data" / "models"),
            "RAG_API__PORT": str(api_port),
            # how often an instance looks for another's changes (default 2 s): what is checked
            # is that it sees them without a restart, within WAIT_S
            "RAG_CHROMA__SYNC_S": "0.5",
        }
        log = base / f"serve-{name}.log"
        proc = _start([sys.executable, "-m", "rag_cli", "serve"], env, log, request)
        url = f"http://127.0.0.1:{api_port}"
        _wait(f"{url}/healthz", proc, log, f"rag serve ({name})")
        out.append(Instance(url, env))
    yield out[0], out[1]


def _ingest(instance: Instance) -> None:
    done = run_rag("ingest", env=instance.env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def _until(check: Any) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < WAIT_S, f"not seen by the other instance in {WAIT_S} s"
        time.sleep(0.1)
    return time.monotonic() - t0


def test_both_instances_find_the_same_paragraphs(instances: tuple[Instance, Instance]) -> None:
    a, b = instances
    assert not (Path(b.env["RAG_DATA_DIR"]) / "chroma").exists()  # b keeps no vectors
    for query in ("Kathmandu Policy Forum", "Who is Dr. Ahmed Al-Thani?"):
        assert a.retrieve(query, k=5) == b.retrieve(query, k=5)
    assert b.cited("Kathmandu Policy Forum")[0] == ("bhutan-qatar.md", 3)


def test_a_document_added_then_removed_through_one_reaches_the_other(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    corpus = Path(a.env["RAG_CORPUS_DIR"])
    assert ("quokka.md", 1) not in b.cited(QUOKKA)
    (corpus / "quokka.md").write_text(EXTRA, encoding="utf-8")
    try:
        _ingest(a)
        _until(lambda: b.cited(QUOKKA)[:1] == [("quokka.md", 1)])
        assert b.retrieve(QUOKKA) == a.retrieve(QUOKKA)
    finally:
        (corpus / "quokka.md").unlink()
    _ingest(a)
    _until(lambda: ("quokka.md", 1) not in b.cited(QUOKKA))
    assert b.retrieve(QUOKKA) == a.retrieve(QUOKKA)


def test_two_ingests_at_once_embed_a_new_document_once(
    instances: tuple[Instance, Instance],
) -> None:
    a, b = instances
    doc = Path(a.env["RAG_CORPUS_DIR"]) / "wombat.md"
    doc.write_text("Wombat droppings are cube-shaped, which stops them rolling away.\n")
    query = "Why are wombat droppings cube-shaped?"
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rag_cli", "ingest", "--json"],
                cwd=ROOT,
                env=inst.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for inst in (a, b)
        ]
        outs = [proc.communicate(timeout=600) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], outs
        # the server-side lock let one embed the document; the other found it stored
        assert sorted(json.loads(o)["chunks_added"] for o, _err in outs) == [0, 1], outs
        for inst in (a, b):
            _until(lambda inst=inst: inst.cited(query)[:1] == [("wombat.md", 1)])
        assert a.retrieve(query) == b.retrieve(query)
    finally:
        doc.unlink()
    _ingest(b)
    _until(lambda: ("wombat.md", 1) not in a.cited(query))


@pytest.mark.llm
def test_the_other_instance_answers_with_the_same_citations(
    instances: tuple[Instance, Instance],
) -> None:
    _a, b = instances
    resp = httpx.post(
        f"{b.url}/v1/answer",
        json={"question": "Which institution is Dr. Tenzin Wangchuk affiliated with?"},
        timeout=900,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "Kathmandu Policy Forum" in body["answer"], body
    assert ("bhutan-qatar.md", 3) in {(c["source"], c["paragraph"]) for c in body["citations"]}
