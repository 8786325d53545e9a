"""rag: answers questions only from a corpus, citing the paragraph behind every claim.

Example:
    >>> from rag import Settings, ingest, retrieve, ask
    >>> settings = Settings(corpus_dir="corpus")
    >>> ingest(settings)
    >>> retrieve("Kathmandu Policy Forum", k=3, settings=settings)[0].paragraph
    >>> answer = ask("Which institution is Dr. Tenzin Wangchuk affiliated with?", settings=settings)
    >>> answer.text, answer.citations[0].quote
"""

from rag.chain import AnswerChain, ask, get_chain, stream_answer
from rag.errors import (
    ChromaServerUnreachableError,
    CorpusError,
    DiskFullError,
    EmbeddingModelMismatchError,
    IndexBusyError,
    IndexDamagedError,
    IndexLocationError,
    IndexNotFoundError,
    InvalidQueryError,
    LLMError,
    LLMTimeoutError,
    ModelNotAvailableError,
    RagError,
)
from rag.ingest import ensure_index, ingest
from rag.retrieval import CorpusRetriever, HybridRetriever, relevance, retrieve
from rag.settings import Settings
from rag.status import IndexStatus, index_status
from rag.types import (
    ABSTENTION_TEXT,
    Answer,
    AnswerEvent,
    Citation,
    IngestReport,
    Passage,
    Timings,
)

__all__ = [
    "ABSTENTION_TEXT",
    "Answer",
    "AnswerChain",
    "AnswerEvent",
    "ChromaServerUnreachableError",
    "Citation",
    "CorpusError",
    "CorpusRetriever",
    "DiskFullError",
    "EmbeddingModelMismatchError",
    "HybridRetriever",
    "IndexBusyError",
    "IndexDamagedError",
    "IndexLocationError",
    "IndexNotFoundError",
    "IndexStatus",
    "IngestReport",
    "InvalidQueryError",
    "LLMError",
    "LLMTimeoutError",
    "ModelNotAvailableError",
    "Passage",
    "RagError",
    "Settings",
    "Timings",
    "ask",
    "get_chain",
    "index_status",
    "ensure_index",
    "ingest",
    "relevance",
    "retrieve",
    "stream_answer",
]
