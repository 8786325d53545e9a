"""The data that flows through the pipeline, in order:

SourceDocument -> Paragraph -> Chunk -> (Chroma) -> Passage -> Answer
"""

from __future__ import annotations

from collections.abc import Sequence
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
    verification: float = 0.0  # the support checks, the model's yes/no checks and the gate
    prompt_tokens: int | None = None  # tokens of the answer prompt's messages (what is read)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ABSTENTION_TEXT = "The source does not say."
UNCONFIRMED_TEXT = "The documents do not confirm this. The closest passage is:"

Outcome = Literal["answered", "unconfirmed", "abstained"]
# Where an answer stopped short: nothing relevant was retrieved, the model found no answer or
# wrote nothing the sources state, or the answer gate's score is under its threshold.
Stage = Literal["", "retrieval", "reading", "gate", "timeout"]

# The keys of ``Answer.to_dict()`` (the API's answer and ``rag ask --json``), in order.
ANSWER_FIELDS = (
    "answer",
    "outcome",
    "abstained",
    "citations",
    "evidence",
    "standalone_question",
    "retrieved",
    "timings",
    "stage",
    "gate_score",
    "gate_threshold",
    "reason",
)
# ``to_dict`` also knows "see_also".


@dataclass(frozen=True)
class Answer:
    """An answer in the source's words (``outcome == "answered"``), the closest passage shown
    as evidence when the gate cannot confirm it (``"unconfirmed"``), or nothing
    (``"abstained"``). Both of the latter are abstentions (``abstained=True``); ``stage`` says
    which step stopped, ``gate_score``/``gate_threshold`` by how much."""

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
    evidence: tuple[Citation, ...] = ()  # the closest sentence(s) of an unconfirmed answer
    outcome: Outcome = "answered"  # an abstained=True answer is never "answered"
    stage: Stage = ""
    gate_score: float | None = None
    gate_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.abstained and self.outcome == "answered":
            object.__setattr__(self, "outcome", "abstained")

    def to_dict(
        self,
        fields: Sequence[str] = ANSWER_FIELDS,
        citation_fields: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The one JSON shape of an answer (the API, ``rag ask --json``, the UI, the evals).

        ``fields``: which keys, in this order (any of ``ANSWER_FIELDS`` and ``"see_also"``);
        ``citation_fields``: which keys of each citation (default: all of them).

        >>> Answer(text=ABSTENTION_TEXT, abstained=True).to_dict(fields=("answer", "abstained"))
        {'answer': 'The source does not say.', 'abstained': True}
        """

        def citation(c: Citation) -> dict[str, Any]:
            d = c.to_dict()
            return d if citation_fields is None else {k: d[k] for k in citation_fields}

        values: dict[str, Any] = {
            "answer": lambda: self.text,
            "abstained": lambda: self.abstained,
            "citations": lambda: [citation(c) for c in self.citations],
            "evidence": lambda: [citation(c) for c in self.evidence],
            "outcome": lambda: self.outcome,
            "stage": lambda: self.stage,
            "gate_score": lambda: self.gate_score,
            "gate_threshold": lambda: self.gate_threshold,
            "standalone_question": lambda: self.standalone_question,
            "retrieved": lambda: [
                {"source": p.source, "paragraph": p.paragraph} for p in self.passages
            ],
            "timings": lambda: self.timings.to_dict(),
            "reason": lambda: self.reason,
            "see_also": lambda: [
                {"source": p.source, "paragraph": p.paragraph, "page": p.page}
                for p in self.see_also
            ],
        }
        return {name: values[name]() for name in fields}


@dataclass(frozen=True)
class AnswerEvent:
    """One step of a streamed answer. Only ``kind == "final"`` carries the verified answer.

    kind: "status" (a progress message), "passages" (what was retrieved, sent before the model
    reads), "draft" (unverified model tokens, for progress only), "final" (the ``Answer``).
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

    def summary(self) -> str:
        """One line: what the index holds and what this run changed (the CLI, the UI, evals)."""
        skipped = f"; skipped {len(self.skipped)} unreadable file(s)" if self.skipped else ""
        return (
            f"Indexed {self.documents} documents, {self.paragraphs} paragraphs, "
            f"{self.chunks} chunks in {self.seconds:.1f} s "
            f"(+{self.chunks_added} / −{self.chunks_removed} chunks{skipped})."
        )

    def details(self) -> list[str]:
        """The counts behind :meth:`summary`, one line per kind (``rag ingest``)."""
        lines = [
            f"documents  added {self.documents_added}, updated {self.documents_updated}, "
            f"removed {self.documents_removed}, unchanged {self.documents_unchanged}",
            f"paragraphs added {self.paragraphs_added}, updated {self.paragraphs_updated}, "
            f"removed {self.paragraphs_removed}, unchanged {self.paragraphs_unchanged}",
            f"chunks     added {self.chunks_added}, removed {self.chunks_removed}, "
            f"unchanged {self.chunks_unchanged}",
        ]
        if self.chunks_resumed:
            lines.append(
                f"resumed: {self.chunks_resumed} chunks stored by an interrupted run were kept"
            )
        if self.paragraphs_per_s:
            lines.append(f"embedded {self.paragraphs_per_s:.1f} paragraphs/s")
        return lines
