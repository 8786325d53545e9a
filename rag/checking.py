"""Check what the model wrote: ground each statement in a source sentence that states it, then
decide whether that sentence answers the question.

The shipped configuration (``verification.verifier = "default"`` with the answer gate on):
words first, the model's P(yes) where words cannot decide whether a sentence states the
statement; then the answer gate (``rag.verification.answer_gate``), a logistic regression over
the model's answer check and other signals, decides whether it answers. The other
configurations ("lexical", "llm", or the gate off) let the verifier decide both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel

from rag.citations import parse_claims
from rag.embedding import Embedder
from rag.grounding import GroundedClaim, ground_claims, question_parts
from rag.settings import Settings
from rag.text import content_terms
from rag.types import Passage
from rag.verification import (
    CascadeVerifier,
    LLMVerifier,
    Verifier,
    YesNoScorer,
    build_verifier,
    scorer_for,
)
from rag.verification.answer_gate import AnswerGate, load_answer_gate, signals

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """A grounded statement with the answer gate's signals and score."""

    claim: GroundedClaim
    signals: dict[str, float]
    score: float


@dataclass(frozen=True)
class Checked:
    """The statements shown (``accepted``), every statement the gate judged (``judged``,
    empty without a gate) and the parts of a multi-part question nothing answers."""

    accepted: list[GroundedClaim]
    judged: list[Judged]
    uncovered: list[str]
    threshold: float | None

    @property
    def closest(self) -> Judged | None:
        """The judged statement with the highest gate score (shown as unconfirmed evidence)."""
        return max(self.judged, key=lambda j: j.score, default=None)


class Checker:
    """Grounding and the answer decision for one chain (one verifier, one model lock)."""

    def __init__(
        self,
        *,
        verifier: Verifier,
        embedder: Embedder,
        gate: AnswerGate | None = None,
        checks: LLMVerifier | None = None,
        filter_paragraphs: bool = False,
        scorer: YesNoScorer | None = None,
    ) -> None:
        self.verifier = verifier
        self.embedder = embedder
        self.gate = gate
        self.checks = checks
        self.filter_paragraphs = filter_paragraphs
        self.scorer = scorer
        # With a gate, grounding judges support only: the gate decides whether it answers.
        self.support = (
            CascadeVerifier(checks, check_support=verifier.check_support, check_answers=False)
            if gate is not None and checks is not None and isinstance(verifier, CascadeVerifier)
            else verifier
        )

    def check(
        self,
        raw: str,
        passages: Sequence[Passage],
        question: str,
        distinctive: set[str] | None = None,
    ) -> Checked:
        """``distinctive``: the question's words found in at most half of the indexed chunks
        (None when unknown)."""
        claims = ground_claims(
            parse_claims(raw), passages, question, self.support, self.similarity()
        )
        judged: list[Judged] = []
        uncovered: list[str] = []
        if self.gate is not None and self.checks is not None:
            # A multi-part question is judged part by part: a sentence answers the question
            # when it answers one part, and a part no shown sentence answers is said so.
            parts = question_parts(question)
            covered: set[int] = set()
            for c in claims:
                by_part = [self.judge(c, part, passages, distinctive) for part in parts]
                covered |= {k for k, j in enumerate(by_part) if j.score >= self.gate.threshold}
                judged.append(max(by_part, key=lambda j: j.score))
            claims = [j.claim for j in judged if j.score >= self.gate.threshold]
            if claims and len(parts) > 1:
                uncovered = [part for k, part in enumerate(parts) if k not in covered]
        else:
            if self.filter_paragraphs and distinctive is not None:
                # A cited paragraph must share a distinctive term with the question (a word
                # found in at most half of the indexed chunks).
                claims = [c for c in claims if distinctive & set(content_terms(c.passage.text))]
            uncovered = self.uncovered_parts(claims, question) if claims else []
        if self.scorer is not None:
            self.scorer.release()  # the next answer re-reads only what differs in its prompt
        return Checked(
            claims, judged, uncovered, self.gate.threshold if self.gate is not None else None
        )

    def judge(
        self,
        claim: GroundedClaim,
        question: str,
        passages: Sequence[Passage],
        distinctive: set[str] | None,
    ) -> Judged:
        """The answer gate's signals and score for ``claim``'s sentence against ``question``."""
        assert self.gate is not None and self.checks is not None
        p = claim.passage
        feats = signals(
            question=question,
            statement=claim.statement,
            sentence=claim.quote,
            paragraph=p.text,
            p_answers=self.checks.answer_score(claim.quote, question, section_of(p)),
            rank=next(i for i, x in enumerate(passages) if x is p) + 1,
            similarity=p.similarity or 0.0,
            distinctive=distinctive,
        )
        return Judged(claim, feats, self.gate.score(feats))

    def similarity(self) -> Callable[[str, Sequence[str]], list[float]]:
        """Cosine similarity of a statement to candidate sentences by the embedder, each
        sentence embedded once per answer."""
        embedder = self.embedder
        unit: dict[str, np.ndarray] = {}

        def similarity(statement: str, sentences: Sequence[str]) -> list[float]:
            new = [t for t in dict.fromkeys([statement, *sentences]) if t not in unit]
            for text, v in zip(new, embedder.embed_documents(new) if new else [], strict=True):
                vector = np.asarray(v, dtype=float)
                unit[text] = vector / (np.linalg.norm(vector) + 1e-12)
            return [float(unit[s] @ unit[statement]) for s in sentences]

        return similarity

    def uncovered_parts(self, claims: Sequence[GroundedClaim], question: str) -> list[str]:
        """The parts of a multi-part question that no accepted statement answers."""
        parts = question_parts(question)
        if len(parts) < 2:
            return []
        return [
            part
            for part in parts
            if not any(
                self.verifier.verify(c.statement, c.quote, part).answers is not False
                for c in claims
            )
        ]


def section_of(passage: Passage) -> str:
    """Where a sentence stands, for the answer check: its heading path (which begins with the
    document's title), else the document's file name in words."""
    return passage.section or Path(passage.source).stem.replace("-", " ").replace("_", " ")


def checker_for(
    settings: Settings,
    *,
    llm: BaseChatModel,
    embedder: Embedder,
    verifier: Verifier | None = None,
    gate: AnswerGate | None = None,
) -> Checker:
    """The checker the settings name, over the chain's own model (``verifier`` and ``gate``
    replace the configured ones, e.g. in tests)."""
    v = settings.verification
    if verifier is None:
        scorer = None if v.verifier == "lexical" else scorer_for(llm, settings)
        if scorer is None and v.verifier != "lexical":
            logger.warning("the model gives no log-probabilities: lexical checks only")
        verifier = build_verifier(v.verifier, scorer, settings)
    checks = verifier.llm if isinstance(verifier, CascadeVerifier) else None
    model_checks = checks or (verifier if isinstance(verifier, LLMVerifier) else None)
    return Checker(
        verifier=verifier,
        embedder=embedder,
        gate=(gate or load_answer_gate()) if v.answer_gate and checks is not None else None,
        checks=checks,
        filter_paragraphs=v.evidence_must_match_question,
        scorer=model_checks.scorer if model_checks is not None else None,
    )
