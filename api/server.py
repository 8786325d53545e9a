"""Runs the API with uvicorn on ``settings.api.host:port``, with request ids in every log line."""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from asgi_correlation_id import CorrelationIdFilter

from api.app import create_app
from rag.errors import RagError
from rag.settings import Settings

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines carry the request id (``-`` outside a request)."""
    handler = logging.StreamHandler()
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("api", "rag"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("uvicorn.error").setLevel(level)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line ``RagError`` when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RagError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc} (use --port or RAG_API__PORT)"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings | None = None, *, chain: Any = None) -> None:
    """Serve the API until interrupted (prints the URL first)."""
    settings = settings or Settings()
    app = create_app(settings, chain=chain)
    api = settings.api
    sock = bind(api.host, api.port)
    configure_logging()
    if api.host not in ("127.0.0.1", "localhost", "::1") and api.token is None:
        logger.warning(
            "listening on %s without a token: anyone who reaches this port can use the API "
            "(set RAG_API__TOKEN)",
            api.host,
        )
    host = f"[{api.host}]" if ":" in api.host else api.host
    print(f"groundedchat API running on http://{host}:{api.port} (docs: /docs)", flush=True)
    if api.token is not None:
        print("bearer token required (RAG_API__TOKEN)", flush=True)
    config = uvicorn.Config(
        app,
        access_log=False,  # api.middleware.AccessLogMiddleware logs each request with its id
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])
