"""The HTTP API application: FastAPI routers over the rag library, with bearer auth, request
ids, a bounded answer queue and OpenAI-shaped errors.

``create_app(settings, chain=None, retriever=None)`` returns the application; ``api.server``
runs it. Routes (``api.routes``): ``POST /v1/retrieve`` (``rag.retrieve``), ``POST /v1/answer``
(``rag.stream_answer``, JSON or server-sent events), ``POST /v1/chat/completions``
(OpenAI-compatible, plain or streamed), ``GET /v1/models``, ``GET /v1/status``
(``rag.index_status``), ``GET /healthz``; the OpenAPI schema at ``/openapi.json``, docs at
``/docs``.

* Nothing unverified is sent: the model's draft tokens are reported as a count only, and the
  answer text is the ``final`` event's verified ``Answer``.
* A bearer token (``RAG_API__TOKEN``) guards every route but the docs, compared in constant
  time (``api.deps``). Errors are one-line JSON in the OpenAI error shape (``api.errors``).
* Answer requests go through ``api.queue.AnswerQueue``: bounded, 429 when full.
* Every response carries ``X-Request-ID`` (the client's, if it sent a valid one), which also
  prefixes every log line written while serving the request.
"""

from __future__ import annotations

import re
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI

from api.deps import Services, require_token
from api.errors import install_error_handlers
from api.middleware import AccessLogMiddleware, BodyLimitMiddleware
from api.queue import AnswerQueue
from api.routes import answers, openai, service
from rag.errors import RagError
from rag.settings import Settings

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _package_version() -> str:
    try:
        return version("groundedchat")
    except PackageNotFoundError:  # running from a source tree
        return "0"


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
    app.state.services = Services(settings, queue, token, int(time.time()), retriever)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=lambda value: _REQUEST_ID.fullmatch(value) is not None,
    )
    install_error_handlers(app)
    app.include_router(service.router)
    app.include_router(openai.router)
    app.include_router(answers.router)
    return app
