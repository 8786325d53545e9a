"""Check what the model wrote: ground each statement in a source sentence that states it, then
decide whether that sentence answers the question.

The shipped configuration (``verification.verifier = "default"`` with the answer gate on):
words first, the model's P(yes) where words cannot decide whether a sentence states the
statement; then the answer gate (``rag.verification.answer_gate``), a logistic regression over
the model's answer check and other signals, decides whether it answers. When no statement
passes, the model's answer check scores the reader's best-ranked sentences (``Checker.pick``),
against a threshold of their own. The other configurations ("lexical", "llm", or the gate off)
let the verifier decide both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel

from rag.citations import parse_claims
from rag.embedding import Embedder
from rag.errors import LLMError
from rag.grounding import GroundedClaim, ground_claims
from rag.questions import question_parts
from rag.selection import Excerpt
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
from rag.verification.answer_gate import AnswerGate, Pick, load_answer_gate, load_pick, signals
from rag.written import Written

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """A grounded statement with the answer gate's signals, score and the threshold it must
    reach; or (``picked``) a sentence the reader ranked best with the answer check's P(yes) and
    the pick's threshold."""

    claim: GroundedClaim
    signals: dict[str, float]
    score: float
    threshold: float
    picked: bool = False

    @property
    def passes(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class Checked:
    """The statements shown (``accepted``), every statement the gate judged (``judged``,
    empty without a gate), the parts of a multi-part question nothing answers, and the
    reader's best-ranked sentence the answer check scored when no statement passed
    (``picked``: shown instead of the statements when it ``passes``, else named in the
    abstention's reason, and shown as its evidence when ``picked_evidence``)."""

    accepted: list[GroundedClaim]
    judged: list[Judged]
    uncovered: list[str]
    threshold: float | None
    picked: Judged | None = None
    picked_evidence: bool = False  # the picked sentence is close enough to show as evidence

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
        pick: Pick | None = None,
        checks: LLMVerifier | None = None,
        filter_paragraphs: bool = False,
        scorer: YesNoScorer | None = None,
    ) -> None:
        self.verifier = verifier
        self.embedder = embedder
        self.gate = gate
        self.pick_setting = pick
        self._answer_scores: dict[tuple[str, str, str], float] = {}
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
        excerpts: Sequence[Excerpt],
        question: str,
        distinctive: set[str] | None = None,
        *,
        written: Written | None = None,
        pick: bool = True,
    ) -> Checked:
        """The model's output ``raw`` checked against the ``excerpts`` it read; with ``pick``,
        the reader's best sentences too when no statement passes. ``distinctive``: the
        question's words found in at most half of the indexed chunks (None when unknown);
        ``written``: the output's tokens with their log-probabilities (the gate may need them)."""
        passages = [e.passage for e in excerpts]
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
                sure = self._least_likely(written, c.statement)
                by_part = [self.judge(c, part, passages, distinctive, sure) for part in parts]
                covered |= {k for k, j in enumerate(by_part) if j.passes}
                judged.append(max(by_part, key=lambda j: j.score))
            claims = [j.claim for j in judged if j.passes]
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
        threshold = self.gate.threshold if self.gate is not None else None
        checked = Checked(claims, judged, uncovered, threshold)
        return self.pick(checked, excerpts, question) if pick else checked

    def _least_likely(self, written: Written | None, statement: str) -> float | None:
        """How sure the model was of the statement's words (the lowest log-probability of its
        tokens); ``LLMError`` when the model gave none and the gate needs it."""
        assert self.gate is not None
        if written is not None and written.logprobs:
            return written.least_likely(statement)
        if "answer_logprob" in self.gate.names:
            raise LLMError(
                "the model gave no log-probabilities for what it wrote (an OpenAI-compatible "
                "server must send logprobs); the answer gate needs them"
            )
        return None

    def judge(
        self,
        claim: GroundedClaim,
        question: str,
        passages: Sequence[Passage],
        distinctive: set[str] | None,
        answer_logprob: float | None,
    ) -> Judged:
        """The answer gate's signals and score for ``claim``'s sentence against ``question``."""
        assert self.gate is not None and self.checks is not None
        p = claim.passage
        feats = signals(
            question=question,
            statement=claim.statement,
            sentence=claim.quote,
            paragraph=p.text,
            p_answers=self.answer_score(claim.quote, question, section_of(p)),
            rank=next(i for i, x in enumerate(passages) if x is p) + 1,
            similarity=p.similarity or 0.0,
            distinctive=distinctive,
            answer_logprob=answer_logprob,
        )
        return Judged(claim, feats, self.gate.score(feats), self.gate.threshold)

    def answer_score(self, sentence: str, question: str, section: str) -> float:
        """The model's answer check, each (sentence, question, section) read once: the pick's
        sentences are often the ones the statements were grounded in."""
        assert self.checks is not None
        key = (sentence, question, section)
        if key not in self._answer_scores:
            if len(self._answer_scores) >= 256:
                self._answer_scores.clear()
            self._answer_scores[key] = self.checks.answer_score(sentence, question, section)
        return self._answer_scores[key]

    def judge_best_read(
        self, excerpts: Sequence[Excerpt], question: str, top: int, part: int | None = None
    ) -> list[Judged]:
        """The ``top`` sentences the reader ranked best among those read, each scored by the
        model's answer check alone (the model wrote none of them). ``part``: ranked for that
        part of a multi-part question, which ``question`` then is."""
        assert self.checks is not None and self.pick_setting is not None
        ranked = sorted(
            (
                (e.passage, s, end, score if part is None else e.part_scores[n][part])
                for e in excerpts
                for n, (s, end, score) in enumerate(e.ranked)
            ),
            key=lambda x: -x[3],
        )
        judged = []
        for p, s, end, _ in ranked[:top]:
            text = p.text[s:end]
            claim = GroundedClaim(text, text, False, text, p, s, end, None)
            score = self.answer_score(text, question, section_of(p))
            threshold = self.pick_setting.threshold
            judged.append(Judged(claim, {"p_answers": score}, score, threshold, picked=True))
        return judged

    def pick(self, checked: Checked, excerpts: Sequence[Excerpt], question: str) -> Checked:
        """When no statement of the model's passes: the reader's best-ranked sentences, scored
        by the model's answer check; the best is shown verbatim as the answer when it reaches
        the pick threshold; under it but from the evidence floor, the abstention shows it as
        the closest evidence. A multi-part question is picked for part by part (the sentences
        ranked best for each part), also for the parts the statements left unanswered."""
        if self.gate is None or self.pick_setting is None:
            return checked
        parts = question_parts(question)
        split = len(parts) > 1 and all(e.part_scores for e in excerpts)
        if checked.accepted and not (split and checked.uncovered):
            return checked
        wanted = checked.uncovered if checked.accepted else parts if split else [question]
        accepted, uncovered, tops = list(checked.accepted), [], []
        for part in wanted:
            k = parts.index(part) if split else None
            judged = self.judge_best_read(excerpts, part, self.pick_setting.top, k)
            best = max(judged, key=lambda j: j.score, default=None)
            tops += [best] if best is not None else []
            if best is None or not best.passes:
                uncovered.append(part)
            elif all(c.quote != best.claim.quote for c in accepted):
                accepted.append(best.claim)
        if self.scorer is not None:
            self.scorer.release()
        if checked.accepted:  # the statements' answer, completed
            return replace(checked, accepted=accepted, uncovered=uncovered)
        best = max(tops, key=lambda j: j.score, default=None)
        if accepted:
            return replace(checked, accepted=accepted, uncovered=uncovered, picked=best)
        close = best is not None and best.score >= self.pick_setting.evidence_floor
        return replace(checked, picked=best, picked_evidence=close)

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
    pick: Pick | None = None,
) -> Checker:
    """The checker the settings name, over the chain's own model (``verifier``, ``gate`` and
    ``pick`` replace the configured ones, e.g. in tests)."""
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
        # The pick's threshold is chosen for the shipped gate: a gate passed in brings its own.
        pick=(pick or (None if gate else load_pick())) if v.answer_gate and checks else None,
        checks=checks,
        filter_paragraphs=v.evidence_must_match_question,
        scorer=model_checks.scorer if model_checks is not None else None,
    )
