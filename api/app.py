"""The HTTP API application: FastAPI routes over the rag library, with bearer auth, request
ids, a bounded answer queue and OpenAI-shaped errors.

``create_app(settings, chain=None, retriever=None)`` returns the application; ``api.server``
runs it. Routes: ``POST /v1/retrieve`` (``rag.retrieve``), ``POST /v1/answer``
(``rag.stream_answer``, JSON or server-sent events), ``POST /v1/chat/completions``
(OpenAI-compatible, plain or streamed), ``GET /v1/models``, ``GET /v1/status``
(``rag.index_status``), ``GET /healthz``; the OpenAPI schema at ``/openapi.json``, docs at
``/docs``.

* Nothing unverified is sent: the model's draft tokens are reported as a count only, and the
  answer text is the ``final`` event's verified ``Answer``.
* A bearer token (``RAG_API__TOKEN``) guards every route but the docs, compared in constant
  time. Errors are one-line JSON in the OpenAI error shape with the HTTP status (400 bad input,
  401, 404, 413 body too large, 429 queue full, 503 model or index unavailable, 504 timeout).
* Answer requests go through ``api.queue.AnswerQueue``: bounded, 429 when full.
* Every response carries ``X-Request-ID`` (the client's, if it sent a valid one), which also
  prefixes every log line written while serving the request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.queue import AnswerJob, AnswerQueue, AnswerTimeoutError, QueueFullError
from api.schemas import (
    MODEL_ID,
    AnswerRequest,
    AnswerResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorResponse,
    ModelList,
    RetrieveRequest,
    RetrieveResponse,
    error_payload,
)
from rag.errors import InvalidQueryError, LLMTimeoutError, RagError
from rag.settings import Settings
from rag.types import Answer, AnswerEvent

logger = logging.getLogger(__name__)

#: seconds between keep-alive comments while a streamed answer has nothing new to say
PING_S = 10.0

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class ApiError(Exception):
    """An error with its HTTP status, raised by the route handlers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def classify(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and one-line message for an error raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, InvalidQueryError):
        return 400, str(exc)
    if isinstance(exc, LLMTimeoutError):
        return 504, str(exc)
    if isinstance(exc, AnswerTimeoutError):
        return 504, "the answer was not ready in time (RAG_API__REQUEST_TIMEOUT_S); try again later"
    if isinstance(exc, QueueFullError):
        return 429, "too many answer requests are waiting; retry in a few seconds"
    if isinstance(exc, RagError):  # index missing or busy, model missing, LLM failed
        return 503, str(exc)
    return 500, f"internal error; see the server log for request {correlation_id.get()}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(
        error_payload(status, _one_line(message), correlation_id.get()),
        status_code=status,
        headers=headers,
    )


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
            response = _error_response(413, _too_large(self.max_bytes))
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


def _llm_description(settings: Settings) -> dict[str, Any]:
    s = settings.llm
    if s.backend == "openai":
        return {"backend": "openai", "model": s.model, "base_url": s.base_url}
    from rag.llm import QWEN_FILENAME

    return {"backend": "llamacpp", "model": str(s.model_path) if s.model_path else QWEN_FILENAME}


def _package_version() -> str:
    try:
        return version("groundedchat")
    except PackageNotFoundError:  # running from a source tree
        return "0"


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad input (one-line message)",
        401: "Missing or wrong bearer token (when RAG_API__TOKEN is set)",
        503: "Index or model unavailable",
    }.items()
}
_ANSWER_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    429: {"model": ErrorResponse, "description": "The answer queue is full; retry later"},
    504: {"model": ErrorResponse, "description": "The answer was not ready in time"},
}


def create_app(
    settings: Settings | None = None,
    *,
    chain: Any = None,
    retriever: Any = None,
) -> FastAPI:
    """The FastAPI application. ``chain`` (a ``rag.AnswerChain``-like object with ``stream``)
    and ``retriever`` (with ``search``) are injectable for tests; by default the library's
    cached ones for ``settings`` are built on first use.

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(Settings()), host="127.0.0.1", port=7861)
    """
    settings = settings or Settings()
    api = settings.api
    token = api.token.get_secret_value() if api.token is not None else None
    if token is not None and not token.strip():
        raise RagError("RAG_API__TOKEN is set but empty: set a token or unset the variable")

    def _chain() -> Any:
        from rag.chain import get_chain

        return get_chain(settings)

    queue = AnswerQueue(
        chain if chain is not None else _chain,
        concurrency=api.concurrency,
        queue_size=api.queue_size,
        timeout_s=api.request_timeout_s,
    )
    retrievers: dict[str, Any] = {"r": retriever}

    def _retriever() -> Any:
        if retrievers["r"] is None:
            from rag.retrieval import get_retriever

            retrievers["r"] = get_retriever(settings)
        return retrievers["r"]

    bearer = HTTPBearer(
        auto_error=False,
        description="Needed on every route when RAG_API__TOKEN is set.",
    )

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <RAG_API__TOKEN>'",
                {"WWW-Authenticate": "Bearer"},
            )

    app = FastAPI(
        title="groundedchat API",
        version=_package_version(),
        description=(
            "Answers only from the indexed documents, citing the paragraph behind every "
            "statement, or says 'The source does not say.'. `/v1/chat/completions` speaks the "
            "OpenAI chat format; its citations travel in the extra field `citations`."
        ),
        dependencies=[Depends(require_token)],
    )
    app.state.settings = settings
    app.state.queue = queue
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=lambda value: _REQUEST_ID.fullmatch(value) is not None,
    )
    created = int(time.time())

    # -- errors ---------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Any:
        return _error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> Any:
        status, message = classify(exc)
        logger.warning("%d: %s", status, _one_line(message))
        return _error_response(status, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif not where:
            message = "the request body must be a JSON object (Content-Type: application/json)"
        else:
            message = f"{where}: {first.get('msg', 'invalid value')}"
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more problem(s))"
        return _error_response(400, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        else:
            message = str(exc.detail)
        return _error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Any:
        # Starlette re-raises the exception after this response, so the server logs it. This
        # handler runs outside the request-id middleware, hence the header here.
        status, message = classify(exc)
        return _error_response(status, message, {"X-Request-ID": correlation_id.get() or ""})

    # -- helpers --------------------------------------------------------------------------

    def _check_history(history: list[dict[str, str]]) -> None:
        if len(history) + 1 > api.max_messages:
            raise ApiError(
                400,
                f"the conversation has {len(history) + 1} messages; the limit is "
                f"{api.max_messages} (RAG_API__MAX_MESSAGES)",
            )

    def _submit(question: str, history: list[dict[str, str]]) -> AnswerJob:
        from rag.chain import validate_history
        from rag.retrieval import validate_query

        _check_history(history)
        validate_query(question, max_chars=settings.retrieval.max_query_chars)
        validate_history(history)
        try:
            return queue.submit(question, history)
        except QueueFullError as exc:
            logger.warning("answer queue full (%s)", queue.stats())
            raise ApiError(*classify(exc), {"Retry-After": "5"}) from exc

    async def _final_answer(job: AnswerJob, request: Request) -> Answer:
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

    async def _stream(
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
                    logger.warning("stream ended with %d: %s", status, _one_line(message))
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

    def _sse(event: str | None, data: Any) -> bytes:
        return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))

    def _sse_headers() -> dict[str, str]:
        return {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    # -- routes ---------------------------------------------------------------------------

    @app.get("/healthz", tags=["service"], responses={401: _ERRORS[401]})
    async def healthz() -> dict[str, str]:
        """Liveness: the server answers. Loads no model."""
        return {"status": "ok"}

    @app.get("/v1/status", tags=["service"], responses=_ERRORS)
    async def status() -> dict[str, Any]:
        """The index (as `rag status --json`), the models, and the answer queue."""
        from rag.status import index_status

        st = await run_in_threadpool(index_status, settings)
        return {
            **st.to_dict(),
            "llm": _llm_description(settings),
            "queue": queue.stats(),
        }

    @app.get("/v1/models", tags=["openai"], response_model=ModelList, responses=_ERRORS)
    async def models() -> dict[str, Any]:
        """The one model this server offers (OpenAI format)."""
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": created, "owned_by": MODEL_ID}],
        }

    @app.post("/v1/retrieve", tags=["rag"], response_model=RetrieveResponse, responses=_ERRORS)
    async def retrieve(body: RetrieveRequest) -> Any:
        """Hybrid (keyword + dense) search: the best paragraphs for the query, best first."""
        from rag.retrieval import validate_query

        if body.k is not None and body.k > api.max_k:
            raise ApiError(400, f"k must be at most {api.max_k} (RAG_API__MAX_K)")
        validate_query(body.query, max_chars=settings.retrieval.max_query_chars, k=body.k)
        passages = await run_in_threadpool(
            _retriever().search, body.query, k=body.k, sources=body.sources
        )
        return JSONResponse({"passages": [p.to_dict() for p in passages]})

    @app.post(
        "/v1/answer",
        tags=["rag"],
        response_model=AnswerResponse,
        responses={
            **_ANSWER_ERRORS,
            200: {
                "description": "The verified answer (JSON), or with `stream: true` server-sent "
                "events: `status`, `passages`, `draft` ({tokens}), then `final` (this JSON) "
                "or `error` ({error})",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def answer(body: AnswerRequest, request: Request) -> Any:
        """The verified answer with its citations, or the abstention."""
        history = [m.model_dump() for m in body.history or []]
        job = _submit(body.question, history)
        if not body.stream:
            final = await _final_answer(job, request)
            return JSONResponse(final.to_dict())

        tokens = 0

        def on_event(event: AnswerEvent) -> bytes | None:
            nonlocal tokens
            if event.kind == "final":
                assert event.answer is not None
                return _sse("final", event.answer.to_dict())
            if event.kind == "draft":
                tokens += 1  # the draft itself is unverified: only its length is reported
                return _sse(
                    "draft",
                    {"tokens": tokens, "message": f"Drafting the answer ({tokens} tokens)…"},
                )
            if event.kind == "passages":
                return _sse(
                    "passages",
                    {
                        "message": event.message,
                        "passages": [p.to_dict() for p in event.passages],
                    },
                )
            data: dict[str, Any] = {"message": event.message}
            if event.standalone_question:
                data["standalone_question"] = event.standalone_question
            return _sse("status", data)

        def on_error(status: int, message: str) -> bytes:
            return _sse("error", error_payload(status, _one_line(message), correlation_id.get()))

        return StreamingResponse(
            _stream(job, on_event, on_error),
            media_type="text/event-stream",
            headers=_sse_headers(),
        )

    @app.post(
        "/v1/chat/completions",
        tags=["openai"],
        response_model=ChatCompletionResponse,
        responses={
            **_ANSWER_ERRORS,
            200: {
                "description": "A chat completion, or with `stream: true` OpenAI chunks; "
                "progress travels as SSE comments, the verified answer in one content chunk, "
                "the citations in the last chunk",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """OpenAI-compatible chat: the last user message is the question, earlier turns the
        history. The content is the verified answer with inline markers [n]."""
        try:
            question, history = body.question_and_history()
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        job = _submit(question, history)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())

        def extras(final: Answer) -> dict[str, Any]:
            return final.to_dict(fields=("citations", "abstained"))

        if not body.stream:
            final = await _final_answer(job, request)
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": now,
                    "model": MODEL_ID,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": final.text},
                            "finish_reason": "stop",
                        }
                    ],
                    **extras(final),
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
            return _sse(
                None,
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": now,
                    "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    **extra,
                },
            )

        def on_event(event: AnswerEvent) -> bytes | None:
            if event.kind == "final":
                assert event.answer is not None
                return chunk({"content": event.answer.text}, None) + chunk(
                    {}, "stop", **extras(event.answer)
                )
            if event.kind == "draft":
                return None  # progress only; comments for every token would be noise
            # progress for raw SSE readers; OpenAI clients skip comment lines
            return format_sse_event(comment=_one_line(event.message))

        def on_error(status: int, message: str) -> bytes:
            return _sse(None, error_payload(status, _one_line(message), correlation_id.get()))

        async def body_bytes() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""}, None)
            async for data in _stream(job, on_event, on_error, tail=b"data: [DONE]\n\n"):
                yield data

        return StreamingResponse(
            body_bytes(), media_type="text/event-stream", headers=_sse_headers()
        )

    return app
