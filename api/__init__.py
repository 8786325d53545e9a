"""The HTTP API for developers: REST retrieval and cited answers, and an OpenAI-compatible
chat endpoint, as a thin FastAPI shell over the ``rag`` library (``rag serve``)."""
