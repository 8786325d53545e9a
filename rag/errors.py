"""Errors raised by the library. Shells (CLI, UI, evals) turn them into one-line messages."""

from __future__ import annotations


class RagError(Exception):
    """Base class for every error this library raises on purpose."""


class InvalidQueryError(RagError, ValueError):
    """A question or search query is empty, too long, or asks for an impossible ``k``."""


class CorpusError(RagError):
    """The corpus directory is missing, unreadable or holds no readable document."""


class IndexNotFoundError(RagError):
    """Nothing has been ingested into the index yet."""


class IndexBusyError(RagError):
    """Another process holds the index's writer lock: an ingest that did not finish within
    the lock timeout, or a first ingest still building the index a reader asked for."""


class IndexLocationError(RagError):
    """The index folder (``--db``, ``RAG_DB_DIR``) is a file or cannot be created."""


class IndexDamagedError(RagError):
    """Index files are truncated, zeroed or missing; ``rag ingest --reset`` rebuilds them."""


class DiskFullError(RagError):
    """The disk holding the index is full: the ingest stopped and the previous index is kept."""


class ChromaServerUnreachableError(RagError):
    """The Chroma server configured by ``RAG_CHROMA_URL`` does not answer."""


class EmbeddingModelMismatchError(RagError):
    """The index was built with another embedding model than the one configured."""


class IndexFormatError(RagError):
    """The index was written in an older layout and must be rebuilt (``rag ingest --reset``)."""


class ModelNotAvailableError(RagError):
    """A model file or package is missing or corrupt."""


class LLMError(RagError):
    """The language model failed or timed out."""


class LLMTimeoutError(LLMError):
    """The model did not finish within the generation timeout."""


class MissingExtraError(RagError, ImportError):
    """A feature needs an optional extra (``pip install 'groundedchat[ui]'``) that is not
    installed."""
