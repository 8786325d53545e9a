"""Reading an answer job: its verified final answer, or its events as server-sent events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event

from api.errors import ApiError, classify, one_line
from api.queue import AnswerJob
from rag.types import Answer, AnswerEvent

logger = logging.getLogger(__name__)

#: seconds between keep-alive comments while a streamed answer has nothing new to say
PING_S = 10.0

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def final_answer(job: AnswerJob, request: Request) -> Answer:
    """Wait for the verified answer; give the job up when the client goes away."""
    while True:
        try:
            event = await job.next_event(wait_s=1.0)
        except asyncio.CancelledError:
            job.cancel()
            raise
        except Exception as exc:
            status, message = classify(exc)
            raise ApiError(status, message) from exc
        if event is None:
            if job.finished:
                raise ApiError(500, "the answer was interrupted; please ask again")
            if await request.is_disconnected():
                job.cancel()
                raise ApiError(499, "the client closed the connection")
            continue
        if event.kind == "final" and event.answer is not None:
            job.cancel()  # nothing more to read: the thread stops at once
            return event.answer


async def stream(
    job: AnswerJob,
    on_event: Callable[[AnswerEvent], bytes | None],
    on_error: Callable[[int, str], bytes],
    tail: bytes = b"",
) -> AsyncIterator[bytes]:
    """Turn the job's events into SSE bytes; keep-alive comments while nothing happens."""
    try:
        while True:
            try:
                event = await job.next_event(wait_s=PING_S)
            except Exception as exc:
                status, message = classify(exc)
                logger.warning("stream ended with %d: %s", status, one_line(message))
                yield on_error(status, message)
                return
            if event is None:
                if job.finished:
                    yield on_error(500, "the answer was interrupted; please ask again")
                    return
                yield KEEPALIVE_COMMENT
                continue
            data = on_event(event)
            if data:
                yield data
            if event.kind == "final":
                if tail:
                    yield tail
                return
    finally:
        job.cancel()


def sse(event: str | None, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))
