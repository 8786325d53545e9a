"""Reading an answer job: its verified final answer, or its events as server-sent events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import Request
from fastapi.responses import StreamingResponse
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event

from api.errors import ApiError, classify, one_line
from api.queue import AnswerJob
from api.schemas import error_payload
from rag.types import Answer, AnswerEvent

logger = logging.getLogger(__name__)

#: seconds between keep-alive comments while a streamed answer has nothing new to say
PING_S = 10.0


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


def event_stream(
    job: AnswerJob,
    on_event: Callable[[AnswerEvent], bytes | None],
    *,
    error_event: str | None,
    head: bytes = b"",
    tail: bytes = b"",
) -> StreamingResponse:
    """The job's events as a server-sent event stream: ``head``, then ``on_event`` of each
    event, then ``tail`` after the final one; an error ends the stream with an
    ``error_event`` event in the API's error shape."""

    def on_error(status: int, message: str) -> bytes:
        return sse(error_event, error_payload(status, one_line(message), correlation_id.get()))

    return StreamingResponse(
        _stream(job, on_event, on_error, head, tail),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    job: AnswerJob,
    on_event: Callable[[AnswerEvent], bytes | None],
    on_error: Callable[[int, str], bytes],
    head: bytes,
    tail: bytes,
) -> AsyncIterator[bytes]:
    """Turn the job's events into SSE bytes; keep-alive comments while nothing happens."""
    try:
        if head:
            yield head
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
