"""The ``openai`` LLM backend against a real OpenAI-compatible server.

Starts ``python -m llama_cpp.server`` on the packaged Qwen GGUF (a real server process on a
free loopback port), points ``Settings.llm`` at it and runs the answer chain end to end.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.settings import LLMSettings, Settings
from tests.servers import free_port, stop

pytestmark = [pytest.mark.integration, pytest.mark.llm]

QUESTION = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
SERVED_MODEL = "qwen2.5-coder-1.5b-instruct"
STARTUP_TIMEOUT_S = 180.0


def wait_for_models(url: str, proc: subprocess.Popen[bytes], log: Path) -> list[str]:
    """Poll ``GET {url}/models`` until the server answers; fail early if it exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                body = json.loads(resp.read())
            return [m["id"] for m in body.get("data", [])]
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    pytest.fail(
        f"llama_cpp.server did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n"
        f"{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def llm_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A running ``llama_cpp.server`` on the packaged model; yields its ``/v1`` base URL."""
    import llama_cpp.server  # noqa: F401  (the [server] extra; never skipped)

    from rag.llm import llama_server_command, packaged_model_path

    root = Path(__file__).resolve().parents[2]
    model = packaged_model_path(Settings(models_dir=root / "data" / "models"))
    port = free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            llama_server_command(model, port, alias=SERVED_MODEL, threads=2),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    request.addfinalizer(lambda: stop(proc))
    url = f"http://127.0.0.1:{port}/v1"
    models = wait_for_models(url, proc, log)
    assert SERVED_MODEL in models, models
    yield url


def test_answer_chain_through_openai_compatible_server(
    llm_server: str, real_settings: Settings
) -> None:
    from rag.chain import AnswerChain

    settings = real_settings.model_copy(
        update={
            "llm": LLMSettings(
                backend="openai", base_url=llm_server, model=SERVED_MODEL, timeout_s=600
            )
        }
    )
    events = list(AnswerChain(settings=settings).stream(QUESTION))
    answer = events[-1].answer
    assert events[-1].kind == "final" and answer is not None
    assert any(e.kind == "draft" for e in events), "the server should stream tokens"
    assert not answer.abstained, (answer.reason, answer.raw_output)
    assert "Kathmandu Policy Forum" in answer.text, answer.text
    cited = {(c.source, c.paragraph) for c in answer.citations}
    assert ("bhutan-qatar.md", 3) in cited, cited
    para3 = next(c for c in answer.citations if (c.source, c.paragraph) == ("bhutan-qatar.md", 3))
    assert "Kathmandu Policy Forum" in para3.text
    assert answer.timings.first_token is not None and answer.timings.first_token > 0


def test_openai_backend_reports_unreachable_server(real_settings: Settings) -> None:
    """A wrong endpoint is a clear failure (abstention with the error), not a hang."""
    from rag.chain import AnswerChain

    nobody = f"http://127.0.0.1:{free_port()}/v1"
    llm = LLMSettings(backend="openai", base_url=nobody, model="x", timeout_s=10)
    settings = real_settings.model_copy(update={"llm": llm})
    t0 = time.monotonic()
    try:
        answer = AnswerChain(settings=settings).invoke(QUESTION)
    except Exception as exc:  # the chain may surface the connection error itself
        assert "connect" in f"{type(exc).__name__} {exc}".lower(), repr(exc)
    else:
        assert answer.abstained
    assert time.monotonic() - t0 < 60
