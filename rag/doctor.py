"""``rag doctor``: check each component for real and give one line with a measured figure each."""

from __future__ import annotations

import platform
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.llama import cpu
from rag.settings import Settings

PACKAGES = (
    "torch",
    "sentence-transformers",
    "chromadb",
    "langchain-core",
    "llama_cpp_python",
    "gradio",
    "tiktoken",
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_python() -> Check:
    versions, missing = [], []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    detail = f"Python {platform.python_version()}; " + ", ".join(versions)
    if missing:
        return Check("python", False, detail + f"; missing: {', '.join(missing)}")
    return Check("python", True, detail)


def check_cpu(system_info: str | None = None, flags: set[str] | None = None) -> Check:
    flags = cpu.cpu_flags() if flags is None else flags
    offered = [o.removeprefix("GGML_") for o, on in cpu.build_options(flags).items() if on]
    if system_info is None:
        try:
            from llama_cpp import llama_print_system_info

            system_info = llama_print_system_info().decode(errors="replace")
        except ImportError:
            return Check("cpu", False, f"{cpu.cpu_model()}: llama-cpp-python is not installed")
    built = cpu.built_features(system_info)
    isa = sorted(b for b in built if b in cpu.SYSTEM_INFO_NAMES.values() or b.startswith("AMX"))
    bad = cpu.unsupported(built, flags)
    detail = (
        f"{cpu.cpu_model()}; offers {' '.join(offered) or 'no AVX2'}; "
        f"llama.cpp built for {' '.join(isa) or 'generic x86-64'}"
    )
    if bad:
        return Check(
            "cpu",
            False,
            detail + f"; NOT offered here: {' '.join(bad)} (run scripts/setup.sh to rebuild)",
        )
    return Check("cpu", True, detail)


def check_embedder(settings: Settings) -> Check:
    from rag.embedding import get_embedder

    t0 = time.perf_counter()
    embedder = get_embedder(settings)
    texts = [f"Sentence number {i} about a river basin and an office in Porto." for i in range(64)]
    embedder.embed_documents(texts[:2])  # warm-up
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    vectors = embedder.embed_documents(texts)
    rate = len(vectors) / (time.perf_counter() - t1)
    dim = len(vectors[0])
    return Check(
        "embedder",
        True,
        f"{settings.embedding.model} ({settings.embedding.backend}), "
        f"dim {dim}, loaded in {load_s:.1f} s, {rate:.0f} vectors/s",
    )


# What one answer on the default path reads anew and writes, in the packaged model's tokens: the
# answer prompt (``Timings.prompt_tokens``, p50 384 in `python bench/answers.py`) less its
# 149 tokens of instructions and worked example, which llama.cpp keeps from the previous
# question; the new tokens of the yes/no checks (median 53 on the same 10 questions, counted
# at llama.cpp's eval); and the short answers it writes (14 tokens per answer).
ANSWER_PROMPT_TOKENS = (384 - 149) + 53
ANSWER_GENERATED_TOKENS = 14


def expected_answer_seconds(prompt_tps: float, decode_tps: float) -> float:
    """Seconds one answer takes on a machine that reads and writes at these measured speeds."""
    return ANSWER_PROMPT_TOKENS / prompt_tps + ANSWER_GENERATED_TOKENS / decode_tps


def check_llm(settings: Settings) -> Check:
    if settings.llm.backend == "openai":
        from rag.llm import get_llm

        t0 = time.perf_counter()
        reply = get_llm(settings).invoke("Reply with the word OK.")
        text = str(reply.content).strip()[:40]
        seconds = time.perf_counter() - t0
        return Check(
            "llm",
            bool(text),
            f"openai-compatible {settings.llm.base_url} "
            f"({settings.llm.model}): replied {text!r} in {seconds:.1f} s",
        )
    from rag.llama.probe import run_probe
    from rag.llm import packaged_model_path

    path = Path(settings.llm.model_path or packaged_model_path(settings))
    result = run_probe(path, settings.llm.n_threads)
    detail = f"{path.name} on llama.cpp (child process): {result.describe()}"
    if result.ok and result.prompt_tps > 0 and result.decode_tps > 0:
        expected = expected_answer_seconds(result.prompt_tps, result.decode_tps)
        detail += f"; expect ~{expected:.0f} s per answer on new paragraphs"
    return Check("llm", result.ok, detail)


def check_index(settings: Settings) -> Check:
    from rag.status import index_status

    st = index_status(settings)
    if not st.exists or not st.chunks:
        return Check("index", False, f"{st.location}: nothing indexed; run `rag ingest`")
    paragraphs = sum(d["paragraphs"] for d in st.documents.values())
    detail = (
        f"{st.location}: {len(st.documents)} documents, {paragraphs} paragraphs, "
        f"{st.chunks} chunks, model {st.embedding_model}"
    )
    if st.model_mismatch:
        return Check(
            "index", False, detail + f" (configured {st.configured_model}: `rag ingest --reset`)"
        )
    return Check("index", True, detail)


def check_chroma_server(settings: Settings) -> Check:
    from rag.store import ChromaStore

    t0 = time.perf_counter()
    ChromaStore(settings=settings).client.heartbeat()
    ms = (time.perf_counter() - t0) * 1000
    return Check("chroma", True, f"server {settings.chroma_server}: heartbeat in {ms:.0f} ms")


def check_ui_port(settings: Settings) -> Check:
    host, port = settings.ui.host, settings.ui.port
    with socket.socket() as sock:
        sock.settimeout(1)
        listening = sock.connect_ex((host, port)) == 0
    if not listening:
        return Check("ui", True, f"{host}:{port} is free for `rag ui`")
    try:
        import httpx

        t0 = time.perf_counter()
        page = httpx.get(f"http://{host}:{port}/config", timeout=5)
        ms = (time.perf_counter() - t0) * 1000
        if page.status_code == 200 and "gradio" in page.text.lower():
            return Check("ui", True, f"a Gradio UI answers on {host}:{port} ({ms:.0f} ms)")
    except Exception:
        pass
    return Check("ui", False, f"{host}:{port} is taken by another program; set RAG_UI__PORT")


def run_checks(settings: Settings) -> Iterator[Check]:
    """Each component in turn; a check that raises is a failed check, never a crash."""
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("cpu", check_cpu),
        ("embedder", lambda: check_embedder(settings)),
        ("llm", lambda: check_llm(settings)),
        ("index", lambda: check_index(settings)),
    ]
    if settings.chroma_server:
        checks.append(("chroma", lambda: check_chroma_server(settings)))
    checks.append(("ui", lambda: check_ui_port(settings)))
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        checks = [c for c in checks if c[0] != "cpu"]
    for name, fn in checks:
        try:
            yield fn()
        except Exception as exc:  # a broken component is a result, not a crash
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            yield Check(name, False, f"{type(exc).__name__}: {line}")
