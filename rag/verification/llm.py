"""Verification by the model itself: P(yes) to "does the sentence say exactly this?" (support)
and "does this sentence answer the question?" (answer), each against a calibrated threshold."""

from __future__ import annotations

from rag.verification.base import Verdict
from rag.verification.calibration import Thresholds
from rag.verification.lexical import is_phrase
from rag.verification.prompts import PHRASE_STATEMENT, answer_messages, support_messages
from rag.verification.scoring import YesNoScorer


class LLMVerifier:
    """Both judgements from the model's P(yes), with no lexical stage.

    A bare answer ("Ana Ortiz") is judged as "The answer to “<question>” is: Ana Ortiz".
    """

    def __init__(self, scorer: YesNoScorer, thresholds: Thresholds) -> None:
        self.scorer = scorer
        self.thresholds = thresholds

    def support_score(self, statement: str, evidence: str, question: str | None = None) -> float:
        if question and is_phrase(statement):
            statement = PHRASE_STATEMENT.format(question=question.strip(), statement=statement)
        return self.scorer.p_yes(support_messages(statement, evidence))

    def answer_score(self, evidence: str, question: str, section: str = "") -> float:
        return self.scorer.p_yes(answer_messages(evidence, question, section))

    def verify(self, statement: str, evidence: str, question: str | None = None) -> Verdict:
        s = self.support_score(statement, evidence, question)
        if s < self.thresholds.support:
            return Verdict(False, None, s, "llm", f"P(says it)={s:.2f}")
        if question is None:
            return Verdict(True, None, s, "llm", f"P(says it)={s:.2f}")
        a = self.answer_score(evidence, question)
        ok = a >= self.thresholds.answer
        return Verdict(
            True, ok, min(s, a) if ok else a, "llm", f"P(says it)={s:.2f} P(answers)={a:.2f}"
        )
