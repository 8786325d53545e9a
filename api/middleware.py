"""ASGI middleware of the API: an access log line per request, and the request body limit."""

from __future__ import annotations

import logging
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

logger = logging.getLogger(__name__)


class AccessLogMiddleware:
    """One log line per request: method, path, status, seconds (the request id is added by
    the log format, see ``api.server``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            logger.info(
                "%s %s %d %.3fs",
                scope.get("method", ""),
                scope.get("path", ""),
                status,
                time.perf_counter() - start,
            )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with the API's JSON 413.

    Starlette's own limiter (FastAPI's ``max_body_size``) answers a too-long Content-Length with
    plain text whatever the app's error handlers say, hence this small replacement.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = error_response(413, _too_large(self.max_bytes))
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a chunked body without Content-Length
                raise HTTPException(413, _too_large(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes (RAG_API__MAX_BODY_BYTES)"
