"""What the routes share, kept on ``app.state.services`` and handed to them as dependencies:
the settings, the answer queue, the retriever (built on first use) and the bearer-token check."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError, classify
from api.queue import AnswerJob, AnswerQueue, QueueFullError
from rag.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """The application's collaborators. ``retriever`` is injectable for tests; by default the
    library's cached one for ``settings`` is built on first use."""

    settings: Settings
    queue: AnswerQueue
    token: str | None
    created: int
    _retriever: Any = None

    def retriever(self) -> Any:
        if self._retriever is None:
            from rag.retrieval import get_retriever

            self._retriever = get_retriever(self.settings)
        return self._retriever

    def submit(self, question: str, history: list[dict[str, str]]) -> AnswerJob:
        """Queue an answer after checking the question and history (``ApiError`` 400 or 429)."""
        from rag.chain import validate_history
        from rag.retrieval import validate_query

        api = self.settings.api
        if len(history) + 1 > api.max_messages:
            raise ApiError(
                400,
                f"the conversation has {len(history) + 1} messages; the limit is "
                f"{api.max_messages} (RAG_API__MAX_MESSAGES)",
            )
        validate_query(question, max_chars=self.settings.retrieval.max_query_chars)
        validate_history(history)
        try:
            return self.queue.submit(question, history)
        except QueueFullError as exc:
            logger.warning("answer queue full (%s)", self.queue.stats())
            raise ApiError(*classify(exc), {"Retry-After": "5"}) from exc


def services(request: Request) -> Services:
    """The application's ``Services`` (a route dependency)."""
    return request.app.state.services  # type: ignore[no-any-return]


bearer = HTTPBearer(
    auto_error=False,
    description="Needed on every route when RAG_API__TOKEN is set.",
)


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
) -> None:
    """401 unless the request carries the bearer token (when ``RAG_API__TOKEN`` is set),
    compared in constant time."""
    token = services(request).token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(
            401,
            "missing or wrong bearer token: send 'Authorization: Bearer <RAG_API__TOKEN>'",
            {"WWW-Authenticate": "Bearer"},
        )
