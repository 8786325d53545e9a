"""The HTTP API for developers (``rag serve``): REST retrieval and cited answers, and an
OpenAI-compatible chat endpoint, over the ``rag`` library."""

from rag.extras import require_extra

require_extra("api", "fastapi", "uvicorn", "asgi_correlation_id")
