"""The API's errors: one-line JSON in the OpenAI error shape with the HTTP status (400 bad input,
401, 404, 413 body too large, 429 queue full, 503 model or index unavailable, 504 timeout)."""

from __future__ import annotations

import logging
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.queue import AnswerTimeoutError, QueueFullError
from api.schemas import ErrorResponse, error_payload
from rag.errors import InvalidQueryError, LLMTimeoutError, RagError

logger = logging.getLogger(__name__)


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


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(
        error_payload(status, one_line(message), correlation_id.get()),
        status_code=status,
        headers=headers,
    )


# The error responses the routes document in the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad input (one-line message)",
        401: "Missing or wrong bearer token (when RAG_API__TOKEN is set)",
        503: "Index or model unavailable",
    }.items()
}
ANSWER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    429: {"model": ErrorResponse, "description": "The answer queue is full; retry later"},
    504: {"model": ErrorResponse, "description": "The answer was not ready in time"},
}


def answer_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """The documented responses of a route that answers in JSON, or in server-sent events
    with ``stream: true`` (``description`` says what the 200 carries either way)."""
    return {
        **ANSWER_ERRORS,
        200: {"description": description, "content": {"text/event-stream": {}}},
    }


async def _api_error(request: Request, exc: ApiError) -> Any:
    return error_response(exc.status, exc.message, exc.headers)


async def _rag_error(request: Request, exc: RagError) -> Any:
    status, message = classify(exc)
    logger.warning("%d: %s", status, one_line(message))
    return error_response(status, message)


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
    return error_response(400, message)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see /docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> Any:
    # Starlette re-raises the exception after this response, so the server logs it. This
    # handler runs outside the request-id middleware, hence the header here.
    status, message = classify(exc)
    return error_response(status, message, {"X-Request-ID": correlation_id.get() or ""})


def install_error_handlers(app: FastAPI) -> None:
    """Every error, the framework's included, as the API's one-line JSON."""
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RagError, _rag_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
