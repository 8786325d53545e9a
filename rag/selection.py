"""What the model reads: the sentences of the retrieved paragraphs most likely to answer, under
a token budget, instead of five whole paragraphs.

Each sentence is scored by a logistic regression fitted on SQuAD 2.0 development questions
(``selection.json``, rebuilt by ``bench/context_selection.py fit``) over six signals: the
embedder's cosine between question and sentence, the share of the question's content words in
the sentence and in it with the sentence before, its BM25 score among the candidate sentences,
the paragraph's retrieval rank and its similarity to the question. The best sentences are
taken until the budget is spent, each part of a multi-part question in turn; a sentence that
opens with a pronoun comes with the sentence before it. Each paragraph keeps its chosen
sentences in document order, with "…" where sentences were left out.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.injection import looks_like_instruction
from rag.keyword import bm25s_quiet
from rag.questions import question_parts
from rag.sentences import refers_back, sentence_spans
from rag.text import content_terms
from rag.types import Passage

SELECTOR_FILE = Path(__file__).with_name("selection.json")
FEATURES = (
    "cosine",
    "question_words",
    "with_previous",
    "bm25",
    "inv_rank",
    "paragraph_similarity",
)

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Excerpt:
    """The part of ``passage`` the model reads: its chosen sentences (``text``), and each
    one's offsets in ``passage.text`` (from the sentence before a pronoun sentence) with the
    selector's score (``ranked``, best first; the score for the question's first part), and
    for a multi-part question each one's score for every part (``part_scores``, in the order
    of ``ranked``)."""

    passage: Passage
    text: str
    ranked: tuple[tuple[int, int, float], ...] = ()
    part_scores: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Sentence:
    passage: int  # index into the passages
    start: int
    end: int
    features: dict[str, float]


def _unit(vectors: Any) -> np.ndarray:
    m = np.atleast_2d(np.asarray(vectors, dtype=float))
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)


def sentences(question: str, passages: Sequence[Passage], embedder: Any) -> list[Sentence]:
    """Every sentence of ``passages`` with its selection signals."""
    return sentences_for([question], passages, embedder)[0]


def sentences_for(
    questions: Sequence[str], passages: Sequence[Passage], embedder: Any
) -> list[list[Sentence]]:
    """Every sentence of ``passages`` with its selection signals for each of ``questions``
    (the parts of one question): the sentences are embedded and indexed once."""
    spans = [
        (i, s, e)
        for i, p in enumerate(passages)
        for s, e in sentence_spans(p.text)
        if not looks_like_instruction(p.text[s:e])  # never read: text that addresses the model
    ]
    if not spans:
        return [[] for _ in questions]
    texts = [passages[i].text[s:e] for i, s, e in spans]
    vectors = _unit(embedder.embed_documents(texts))
    terms = [content_terms(t) for t in texts]
    bm25 = _bm25(terms)
    return [
        _signals(spans, passages, terms, vectors @ _unit(embedder.embed_query(q))[0], q, bm25)
        for q in questions
    ]


def _signals(
    spans: Sequence[tuple[int, int, int]],
    passages: Sequence[Passage],
    terms: Sequence[list[str]],
    cos: np.ndarray,
    question: str,
    bm25: Any,
) -> list[Sentence]:
    asked = set(content_terms(question))
    keyword = _bm25_scores(bm25, content_terms(question), len(spans))
    out = []
    for n, ((i, s, e), c) in enumerate(zip(spans, cos, strict=True)):
        mine = set(terms[n])
        # The sentence before, in the same paragraph, may name whom "he" or "it" means.
        before = set(terms[n - 1]) if n and spans[n - 1][0] == i else set()
        feats = {
            "cosine": float(c),
            "question_words": len(asked & mine) / max(1, len(asked)),
            "with_previous": len(asked & (mine | before)) / max(1, len(asked)),
            "bm25": float(keyword[n]),
            "inv_rank": 1.0 / (i + 1),
            "paragraph_similarity": float(passages[i].similarity or 0.0),
        }
        out.append(Sentence(i, s, e, feats))
    return out


def _bm25(sentences: Sequence[list[str]]) -> Any:
    """A bm25s index of the candidate sentences (None when none has a content word)."""
    if not any(sentences):
        return None
    model = bm25s_quiet().BM25()
    model.index([t or [""] for t in sentences], show_progress=False)
    return model


def _bm25_scores(model: Any, query: list[str], n: int) -> np.ndarray:
    """BM25 of each sentence for the query among these sentences (a word most of them share
    weighs little), scaled so the best is 1."""
    if model is None or not query:
        return np.zeros(n)
    scores = np.asarray(model.get_scores(query), dtype=float)
    top = scores.max()
    return scores / top if top > 0 else scores


@dataclass(frozen=True)
class Selector:
    """The fitted sentence scorer (a logistic regression's linear part)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]

    def score(self, feats: dict[str, float]) -> float:
        x = (np.array([feats[f] for f in self.features]) - self.mean) / self.scale
        return float(x @ np.array(self.coef))

    @classmethod
    def from_file(cls, path: Path = SELECTOR_FILE) -> Selector:
        d = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]))


@functools.lru_cache(maxsize=1)
def load_selector() -> Selector:
    return Selector.from_file()


def select(
    question: str,
    passages: Sequence[Passage],
    *,
    embedder: Any,
    count_tokens: CountTokens,
    budget: int,
    selector: Selector | None = None,
) -> list[Excerpt]:
    """The excerpts the model reads, in retrieval order (paragraphs with nothing chosen are
    left out). The best sentence is always taken, whatever its length."""
    by_part = sentences_for(question_parts(question), passages, embedder)
    found = by_part[0]
    if not found:
        return []
    selector = selector or load_selector()
    # Each part of a multi-part question gets its best sentences in turn: one part's many
    # good matches must not spend the budget that another part's answer needs.
    scores = [[selector.score(x.features) for x in f] for f in by_part]  # [part][sentence]
    rankings = [
        sorted(range(len(found)), key=lambda n, k=k: -scores[k][n]) for k in range(len(scores))
    ]
    order = list(dict.fromkeys(n for tier in zip(*rankings, strict=True) for n in tier))
    chosen: set[int] = set()
    ranked: list[tuple[int, int]] = []  # (sentence, the first sentence read with it)
    spent = 0
    for n in order:
        take = {n}
        prev = n - 1
        text = passages[found[n].passage].text
        if (
            prev >= 0
            and found[prev].passage == found[n].passage
            and refers_back(text[found[n].start : found[n].end])
        ):
            take.add(prev)
        new = take - chosen
        cost = sum(count_tokens(text[found[m].start : found[m].end]) for m in new)
        if chosen and spent + cost > budget:
            continue
        chosen |= new
        ranked.append((n, min(take)))
        spent += cost
    excerpts = []
    for i, p in enumerate(passages):
        mine = sorted(m for m in chosen if found[m].passage == i)
        if not mine:
            continue
        parts: list[str] = []
        for a, b in zip([None, *mine], mine, strict=False):
            if parts and (a is None or b != a + 1):
                parts.append("…")
            parts.append(p.text[found[b].start : found[b].end])
        own = [m for m in range(len(found)) if found[m].passage == i]
        if mine[0] != own[0]:
            parts.insert(0, "…")
        if mine[-1] != own[-1]:
            parts.append("…")
        read = [(n, first) for n, first in ranked if found[n].passage == i]
        best = tuple((found[first].start, found[n].end, scores[0][n]) for n, first in read)
        each = tuple(tuple(part[n] for part in scores) for n, _ in read) if len(scores) > 1 else ()
        excerpts.append(Excerpt(p, " ".join(parts), best, each))
    return excerpts
