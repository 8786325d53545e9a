"""The data that flows through the pipeline, in order:

SourceDocument -> Paragraph -> Chunk -> (Chroma) -> Passage -> Answer
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Block:
    """A heading or a body paragraph as a loader found it, with offsets into the document text."""

    kind: Literal["heading", "paragraph"]
    text: str
    start: int
    end: int
    level: int = 0  # heading level (1 = top), 0 when the format has no levels
    page: int | None = None  # 1-based page of a paged format (PDF), else None


@dataclass(frozen=True)
class SourceDocument:
    """One file of the corpus, read and split into blocks."""

    source: str  # path relative to the corpus folder, with forward slashes
    text: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Paragraph:
    """The citable unit: a body paragraph, numbered 1..n in reading order per document."""

    id: str
    source: str
    number: int
    section: str
    text: str
    start: int
    end: int
    content_hash: str
    page: int | None = None  # 1-based page where the paragraph starts (PDF), else None


@dataclass(frozen=True)
class Chunk:
    """The embedding unit. Never spans two paragraphs; sub-chunks keep the paragraph's id."""

    id: str
    paragraph_id: str
    source: str
    paragraph: int
    section: str
    text: str
    chunk_index: int
    n_chunks: int
    paragraph_text: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved paragraph.

    ``text`` is always the whole paragraph, even when a sub-chunk matched.
    ``dense_rank`` / ``bm25_rank`` are 1-based ranks from each retriever (None: not in its list).
    ``similarity`` is the best cosine similarity of the query to one of the paragraph's chunks.
    """

    source: str
    paragraph: int
    section: str
    text: str
    score: float
    paragraph_id: str = ""
    dense_rank: int | None = None
    bm25_rank: int | None = None
    similarity: float | None = None
    page: int | None = None  # 1-based page of the paragraph (PDF), else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A verified citation: ``quote`` occurs in ``text``, the whole cited paragraph."""

    marker: int
    source: str
    paragraph: int
    section: str
    text: str
    quote: str
    quote_start: int = -1
    quote_end: int = -1
    answer_start: int = -1  # the short answer inside the quote (offsets in ``text``), -1: none
    answer_end: int = -1
    page: int | None = None  # 1-based page of the paragraph (PDF), else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each stage of one answer."""

    condense: float = 0.0
    retrieval: float = 0.0
    first_token: float | None = None
    generation: float = 0.0
    total: float = 0.0
    verification: float = 0.0  # checking the statements (lexical and model checks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ABSTENTION_TEXT = "The source does not say."


@dataclass(frozen=True)
class Answer:
    """A verified answer, or an abstention (``abstained=True``, ``text == ABSTENTION_TEXT``)."""

    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    standalone_question: str = ""
    question: str = ""
    timings: Timings = field(default_factory=Timings)
    raw_output: str = ""
    see_also: tuple[Passage, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by ``rag ask --json`` and the evals."""
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "standalone_question": self.standalone_question,
            "retrieved": [{"source": p.source, "paragraph": p.paragraph} for p in self.passages],
            "timings": self.timings.to_dict(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AnswerEvent:
    """One step of a streamed answer. Only ``kind == "final"`` carries the verified answer.

    kind: "status" (a progress message), "passages" (what was retrieved), "draft" (unverified
    model tokens, for progress only), "final" (the verified ``Answer``).
    """

    kind: Literal["status", "passages", "draft", "final"]
    message: str = ""
    passages: tuple[Passage, ...] = ()
    answer: Answer | None = None
    standalone_question: str = ""


@dataclass
class IngestReport:
    """What one ``ingest`` changed."""

    documents: int = 0
    paragraphs: int = 0
    chunks: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_removed: int = 0
    documents_unchanged: int = 0
    paragraphs_added: int = 0
    paragraphs_updated: int = 0
    paragraphs_removed: int = 0
    paragraphs_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    chunks_resumed: int = 0  # stored by an interrupted earlier run, kept, not embedded again
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    paragraphs_per_s: float = 0.0  # embedding rate of this run (0 if nothing was embedded)
    keyword_seconds: float = 0.0  # time to build and publish the BM25 index

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
