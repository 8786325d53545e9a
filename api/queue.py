"""Admission for answer requests: a bounded queue in front of the chain, one thread per request.

``AnswerQueue.submit`` admits a request or raises ``QueueFullError`` at once (the API answers
429). An admitted request runs ``chain.stream`` in its own thread once one of ``concurrency``
worker slots is free; its events reach the event loop through an ``asyncio.Queue``. The chain
itself holds the library's LLM lock (``rag.llm.llm_lock``) around every generation, so
retrieval runs in parallel and the model one request at a time, as in the UI.

A request counts against the queue until its thread has finished, even when its client has
gone: the capacity bounds real work, not open connections. A cancelled job (deadline passed,
client gone) never starts if it is still waiting for a slot, and stops at its next event if
the model has not started generating for it. Once the model is generating, the generation runs
to its end and the events are dropped: interrupting llama.cpp mid-generation was followed by a
``GGML_ASSERT`` abort of the whole server in the load test (bench/RESULTS.md §9), so the API
never does it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from rag.types import AnswerEvent


class StreamingChain(Protocol):
    """What the queue needs from ``rag.AnswerChain``."""

    def stream(
        self, question: str, history: Sequence[dict[str, str]] | None = None
    ) -> Iterator[AnswerEvent]: ...


class QueueFullError(Exception):
    """Every worker slot is busy and the waiting line is full."""


class AnswerTimeoutError(Exception):
    """The answer was not ready before the request's deadline."""


_DONE = object()


class AnswerJob:
    """One admitted request: read its events with ``next_event``; ``cancel`` when abandoning it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # time.monotonic() value
        self.cancelled = threading.Event()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._finished = False

    def put(self, item: Any) -> None:
        """Called from the worker thread."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the event loop is closed (server shutdown): nobody is listening
            self.cancelled.set()

    async def next_event(self, wait_s: float | None = None) -> AnswerEvent | None:
        """The next event; ``None`` when the chain has finished or ``wait_s`` passed first.

        Raises ``AnswerTimeoutError`` past the deadline (and cancels the job) and re-raises any
        exception the chain raised.
        """
        if self._finished:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.cancel()
            raise AnswerTimeoutError
        timeout = remaining if wait_s is None else min(wait_s, remaining)
        try:
            item = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                self.cancel()
                raise AnswerTimeoutError from None
            return None
        if item is _DONE:
            self._finished = True
            return None
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item  # type: ignore[no-any-return]

    @property
    def finished(self) -> bool:
        return self._finished

    def cancel(self) -> None:
        self.cancelled.set()


class AnswerQueue:
    """At most ``concurrency`` requests run at once and ``queue_size`` more wait.

    Example:
        >>> queue = AnswerQueue(lambda: chain, concurrency=8, queue_size=32, timeout_s=300)
        >>> job = queue.submit("Who is Dr. Wangchuk?", [])   # raises QueueFullError when full
        >>> event = await job.next_event()
    """

    #: how often a thread waiting for a worker slot checks whether its job was cancelled
    poll_s = 0.2

    def __init__(
        self,
        chain: Any,
        *,
        concurrency: int,
        queue_size: int,
        timeout_s: float,
    ) -> None:
        self._chain = chain  # a StreamingChain, or a callable returning one (built lazily)
        self.concurrency = concurrency
        self.capacity = concurrency + queue_size
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0

    def stats(self) -> dict[str, int]:
        """Requests admitted and not finished, those running, and the capacity."""
        with self._lock:
            return {
                "pending": self._pending,
                "running": self._running,
                "concurrency": self.concurrency,
                "capacity": self.capacity,
            }

    def _get_chain(self) -> StreamingChain:
        if hasattr(self._chain, "stream"):
            return self._chain  # type: ignore[no-any-return]
        self._chain = self._chain()
        return self._chain  # type: ignore[no-any-return]

    def submit(self, question: str, history: Sequence[dict[str, str]]) -> AnswerJob:
        """Admit the request and start its thread, or raise ``QueueFullError``."""
        with self._lock:
            if self._pending >= self.capacity:
                raise QueueFullError
            self._pending += 1
        job = AnswerJob(time.monotonic() + self.timeout_s)
        # the thread inherits the request's context (its request id appears in library logs)
        ctx = contextvars.copy_context()
        thread = threading.Thread(
            target=ctx.run, args=(self._work, job, question, list(history)), daemon=True
        )
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        return job

    def _work(self, job: AnswerJob, question: str, history: list[dict[str, str]]) -> None:
        try:
            while not self._slots.acquire(timeout=self.poll_s):
                if job.cancelled.is_set():
                    return
            with self._lock:
                self._running += 1
            try:
                if job.cancelled.is_set():
                    return
                events = self._get_chain().stream(question, history)
                generating = False
                try:
                    for event in events:
                        generating = generating or event.kind == "draft"
                        if job.cancelled.is_set():
                            if not generating:
                                break  # the model has not started: stop here
                            continue  # let the generation finish (see the module docstring)
                        job.put(event)
                finally:
                    close = getattr(events, "close", None)
                    if callable(close):
                        close()
            finally:
                with self._lock:
                    self._running -= 1
                self._slots.release()
        except Exception as exc:  # handed to the request, which turns it into an HTTP error
            job.put(exc)
        finally:
            with self._lock:
                self._pending -= 1
            job.put(_DONE)
