"""Ground each parsed statement in one source sentence that a ``Verifier`` accepts.

For every statement: rank the sentences of the prompt's paragraphs by the words they share
with it (the model's quote, when it gave one that occurs, first), ask the verifier about the
best two, keep the first it accepts. The citation is the paragraph that truly holds the
sentence. What is shown is the statement as written only when it adds nothing to that
sentence (``adds_nothing``); otherwise it is the sentence itself, verbatim. The answer span
(the words that answer) is located in the sentence for highlighting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.citations import Claim, locate_quote
from rag.injection import looks_like_instruction
from rag.sentences import refers_back, sentence_spans
from rag.types import Passage
from rag.verification.base import Verifier
from rag.verification.lexical import (
    adds_nothing,
    answer_span,
    is_phrase,
    restates_question,
    tokenize,
)

CANDIDATES = 2
_ARTICLE = re.compile(r"^(?:the|an?)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class GroundedClaim:
    """A statement the verifier accepted, with its evidence in ``passage.text[start:end]``.

    ``shown`` is what the user reads: the statement as written when ``as_written`` (it adds
    nothing to the evidence), else the evidence itself. ``span`` is the answer's offsets in
    ``passage.text`` (None when the words that answer are the whole sentence).
    """

    statement: str
    shown: str
    as_written: bool
    quote: str
    passage: Passage
    start: int
    end: int
    span: tuple[int, int] | None

    @property
    def lead(self) -> str:
        """The short answer (the span's text), or "" when there is none."""
        return self.passage.text[self.span[0] : self.span[1]] if self.span else ""


def _keys(text: str) -> set[str]:
    return {t.key for t in tokenize(text) if not t.stop or t.number}


Similarity = Callable[[str, Sequence[str]], Sequence[float]]


def candidate_sentences(
    statement: str,
    passages: Sequence[Passage],
    question: str = "",
    prefer: int | None = None,
    similarity: Similarity | None = None,
) -> list[tuple[int, int, int]]:
    """(passage index, start, end) of the sentences most likely to state ``statement``, best
    first: those holding every name and number the statement adds to the question, then those
    holding all its words, then by meaning (``similarity``, the embedder's cosine, when given)
    plus the share of its words the sentence holds. A sentence that opens with a pronoun (he,
    it…), or whose names the statement needs sit in the sentence before, comes with that
    sentence. A bare answer ("India") means what the question asks, so its meaning is compared
    as the question followed by that answer."""
    want = _keys(statement)
    q = _keys(question)
    names = {t.key for t in tokenize(statement) if t.name}
    facts = {t.key for t in tokenize(statement) if t.name or t.number} - q
    found: list[tuple[bool, float, float, bool, int, int, int]] = []
    for i, p in enumerate(passages):
        spans = sentence_spans(p.text)
        for j, (s, e) in enumerate(spans):
            sent = p.text[s:e]
            if looks_like_instruction(sent):
                continue
            keys = _keys(sent)
            overlap = len(want & keys) / max(1, len(want))
            if not overlap:
                continue
            # A name the statement needs that this sentence lacks: from the sentence before
            # when the question does not supply it, or when this sentence says "he", "it"…
            missing = names - keys
            if not refers_back(sent):
                missing -= q
            if j and (refers_back(sent) or missing & _keys(p.text[spans[j - 1][0] : s])):
                s = spans[j - 1][0]
                keys |= _keys(p.text[s:e])
                overlap = len(want & keys) / max(1, len(want))
            feasible = facts <= keys
            found.append((feasible, overlap, len(q & keys) / max(1, len(q)), i == prefer, i, s, e))
    meaning = f"{question.strip()} {statement}" if question and is_phrase(statement) else statement
    sims = (
        similarity(meaning, [passages[i].text[s:e] for *_, i, s, e in found])
        if similarity is not None and len(found) > 1
        else [0.0] * len(found)
    )
    # (feasible, holds every word of the statement, meaning and shared words together, shared
    # question words, the paragraph the model named)
    pairs = zip(found, sims, strict=True)
    ranked = sorted(
        pairs, key=lambda x: (x[0][0], x[0][1] >= 1, x[1] + x[0][1], *x[0][2:4]), reverse=True
    )
    return [f[4:] for f, _ in ranked[:CANDIDATES]]


def _quote_sentences(passage: Passage, start: int, end: int) -> tuple[int, int]:
    """The whole sentence(s) around a located quote."""
    spans = sentence_spans(passage.text)
    s = max((a for a, b in spans if a <= start), default=0)
    e = min((b for a, b in spans if b >= end), default=len(passage.text))
    return s, e


def _needs_its_sentence(statement: str, question: str) -> bool:
    """A bare phrase, with or without an article ("The two Ambassadors"), or names and numbers
    alone however many ("Dr. Ahmed Al-Thani"), needs its question; a statement that only says
    the question back tells nothing: either way the user reads the source sentence."""
    bare = _ARTICLE.sub("", statement.strip(), count=1)
    words = [t for t in tokenize(bare) if t.content]
    named = bool(words) and all(t.name or t.number for t in words)
    return is_phrase(bare) or named or restates_question(statement, question)


def ground_claims(
    claims: Sequence[Claim],
    passages: Sequence[Passage],
    question: str | None,
    verifier: Verifier,
    similarity: Similarity | None = None,
) -> list[GroundedClaim]:
    """The claims a verifier accepts against a source sentence, each once per sentence."""
    out: list[GroundedClaim] = []
    seen: set[tuple[str, int, int]] = set()
    for claim in claims:
        statement = claim.statement.strip()
        if not statement:
            continue
        prefer = claim.claimed_paragraph - 1 if claim.claimed_paragraph else None
        candidates: list[tuple[int, int, int]] = []
        if claim.quote:
            hit = locate_quote(claim.quote, passages, prefer=prefer)
            if hit is not None:
                i, qs, qe = hit
                candidates.append((i, *_quote_sentences(passages[i], qs, qe)))
        for c in candidate_sentences(statement, passages, question or "", prefer, similarity):
            if c not in candidates:
                candidates.append(c)
        for i, s, e in candidates[:CANDIDATES]:
            p = passages[i]
            evidence = p.text[s:e]
            if looks_like_instruction(evidence):
                continue
            verdict = verifier.verify(statement, evidence, question)
            if not verdict.accept:
                if verdict.supported:
                    break  # a sentence that says it but does not answer: the others won't either
                continue
            key = (p.paragraph_id or p.source, s, e)
            if key in seen:
                break
            seen.add(key)
            as_written = not (question and _needs_its_sentence(statement, question)) and (
                adds_nothing(statement, evidence)
            )
            span = answer_span(statement, evidence, question or "")
            shown = statement if as_written else evidence
            out.append(
                GroundedClaim(
                    statement=statement,
                    shown=shown,
                    as_written=as_written,
                    quote=evidence,
                    passage=p,
                    start=s,
                    end=e,
                    span=(s + span[0], s + span[1]) if span else None,
                )
            )
            break
    return out
