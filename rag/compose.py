"""The answer the user reads, from the checked statements: per statement the short answer,
then the source sentence (or the statement as written when it adds nothing to it) with its
paragraph marker; or, when nothing was confirmed, the abstention, with the closest sentence
shown verbatim as evidence when there is one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rag.checking import Checked
from rag.grounding import GroundedClaim
from rag.text import quoted
from rag.types import (
    ABSTENTION_TEXT,
    UNCONFIRMED_TEXT,
    Answer,
    Citation,
    Passage,
    Stage,
    Timings,
)


def compose(
    claims: Sequence[GroundedClaim], uncovered: Sequence[str] = ()
) -> tuple[str, tuple[Citation, ...]]:
    """The answer text and its citations, one marker per paragraph; then the parts of the
    question the source does not answer."""
    markers: dict[str, int] = {}
    citations: list[Citation] = []
    sentences: list[str] = []
    for c in claims:
        key = c.passage.paragraph_id or f"{c.passage.source}#{c.passage.paragraph}"
        m = markers.setdefault(key, len(markers) + 1)
        citations.append(
            Citation(
                marker=m,
                source=c.passage.source,
                paragraph=c.passage.paragraph,
                section=c.passage.section,
                text=c.passage.text,
                quote=c.quote,
                quote_start=c.start,
                quote_end=c.end,
                answer_start=c.span[0] if c.span else -1,
                answer_end=c.span[1] if c.span else -1,
                page=c.passage.page,
            )
        )
        s = c.shown.strip()
        if not c.as_written:
            s = quoted(s)  # the source's words
        end = "" if s.endswith((".", "!", "?", "”", '"')) else "."
        lead = c.lead.strip()
        if c.as_written and len(lead) >= 0.8 * len(c.shown.strip(" .")):
            lead = ""  # the statement is itself the short answer: say it once
        sentences.append(f"{lead} — {s}{end} [{m}]" if lead else f"{s}{end} [{m}]")
    for part in uncovered:
        sentences.append(f"The source does not say: {part}")
    return " ".join(sentences), tuple(citations)


def _answer(
    text: str,
    *,
    question: str,
    standalone: str,
    passages: Sequence[Passage],
    timings: Timings,
    raw: str,
    **fields: Any,
) -> Answer:
    """``text`` as the ``Answer`` to ``question``, with the chain's standalone question, the
    passages, timings and raw model output; ``fields``: the outcome's other ``Answer`` fields."""
    return Answer(
        text=text,
        passages=tuple(passages),
        standalone_question=standalone,
        question=question,
        timings=timings,
        raw_output=raw,
        **fields,
    )


def answered(claims: Sequence[GroundedClaim], uncovered: Sequence[str], **context: Any) -> Answer:
    """The answer composed from the accepted statements; ``context``: the keywords of
    ``_answer`` (question, standalone, passages, timings, raw) and the gate's score and
    threshold."""
    text, citations = compose(claims, uncovered)
    return _answer(text, abstained=False, citations=citations, **context)


def abstained(
    *,
    question: str,
    standalone: str,
    passages: Sequence[Passage],
    timings: Timings,
    reason: str,
    stage: Stage,
    min_relevance: float,
    raw: str = "",
    closest: GroundedClaim | None = None,
    gate_score: float | None = None,
    gate_threshold: float | None = None,
) -> Answer:
    """Nothing shown as an answer. With ``closest`` (a sentence that states what the model
    wrote, which the answer gate did not confirm answers the question, or the reader's best
    sentence below the pick's threshold), that sentence is shown verbatim as evidence: the
    ``unconfirmed`` outcome."""
    see_also = tuple(p for p in passages[:2] if (p.similarity or 0.0) >= min_relevance)
    evidence: tuple[Citation, ...] = ()
    text = ABSTENTION_TEXT
    if closest is not None:
        plain = replace(closest, shown=closest.quote, as_written=False, span=None)
        shown, evidence = compose([plain])
        text = f"{UNCONFIRMED_TEXT} {shown}"
    return _answer(
        text,
        question=question,
        standalone=standalone,
        passages=passages,
        timings=timings,
        raw=raw,
        abstained=True,
        see_also=see_also,
        reason=reason,
        evidence=evidence,
        outcome="unconfirmed" if evidence else "abstained",
        stage=stage,
        gate_score=gate_score,
        gate_threshold=gate_threshold if gate_score is not None else None,
    )


def final_answer(
    checked: Checked,
    raw: str,
    failure: str,
    *,
    question: str,
    standalone: str,
    passages: Sequence[Passage],
    timings: Timings,
    min_relevance: float,
) -> Answer:
    """The answer from the checked statements (or the reader's best sentence, ``picked``), or
    the abstention naming its stage: the model ran out of time, wrote NOT FOUND or nothing a
    sentence states (``reading``, with the pick's best sentence as evidence from its evidence
    floor), or the gate scored every statement under its threshold (``gate``, with the best
    statement's sentence as evidence); either way the reason names the pick's best score."""
    common = dict(question=question, standalone=standalone, passages=passages, timings=timings)
    picked = checked.picked
    best = checked.closest
    # Always the answer gate's own score and threshold (its best statement), also when the
    # pick answered: the pick's P(yes) is on another scale and goes in the reason.
    gate = dict(
        gate_score=best.score if best else None,
        gate_threshold=checked.threshold if best else None,
    )
    claims = checked.accepted
    if claims:
        if failure:  # the last statement may be cut off: show the source sentences
            claims = [replace(c, shown=c.quote, as_written=False) for c in claims]
        reason = ""
        if picked is not None and picked.passes:
            reason = "no statement of the model's passed the answer gate; the best-ranked "
            reason += f"sentence read did ({picked.score:.2f} ≥ {picked.threshold:.2f})"
        return answered(claims, checked.uncovered, raw=raw, reason=reason, **gate, **common)
    stage: Stage = "reading"
    closest = None
    if failure:
        reason, stage = failure, "timeout"
    elif "NOT FOUND" in raw.upper():
        reason = "the model found no answer in the passages"
    elif best is not None:
        reason = f"the answer gate scored the best statement {best.score:.2f} "
        reason += f"< threshold {best.threshold:.2f}"
        stage, closest = "gate", best.claim
    else:
        reason = "no sentence of the passages states what the model wrote"
    if picked is not None:
        reason += f"; the best-ranked sentence read scored {picked.score:.2f} "
        reason += f"< threshold {picked.threshold:.2f}"
        if stage == "reading" and checked.picked_evidence:  # no statement's source to show
            closest = picked.claim
    return abstained(
        reason=reason,
        raw=raw,
        stage=stage,
        closest=closest,
        min_relevance=min_relevance,
        **gate,  # type: ignore[arg-type]
        **common,  # type: ignore[arg-type]
    )
