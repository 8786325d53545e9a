"""The HTTP API for developers: REST retrieval and cited answers, and an OpenAI-compatible
chat endpoint, as a thin FastAPI shell over the ``rag`` library (``rag serve``)."""

from rag.extras import require_extra

require_extra("api", "fastapi", "uvicorn", "asgi_correlation_id")
