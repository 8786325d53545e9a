"""The verifiers built on the lexical stage: lexical alone, and lexical first with the model
deciding what words alone cannot."""

from __future__ import annotations

from rag.verification.base import Verdict
from rag.verification.lexical import lexical_decision
from rag.verification.llm import LLMVerifier


class LexicalVerifier:
    """Words only: accepts a statement only when it adds nothing to its evidence, and takes
    the evidence as an answer when it shares a content word with the question."""

    def verify(self, statement: str, evidence: str, question: str | None = None) -> Verdict:
        d = lexical_decision(statement, evidence, question)
        answers = None if question is None else d.answers is not False
        supported = bool(d.supported)
        return Verdict(
            supported, answers, float(supported and answers is not False), "lexical", d.reason
        )


class CascadeVerifier:
    """Lexical first; the model's P(yes) where the lexical stage cannot decide, and always for
    whether the evidence answers the question (words cannot tell a true sentence about
    something next to what was asked from an answer)."""

    def __init__(
        self, llm: LLMVerifier, check_support: bool = True, check_answers: bool = True
    ) -> None:
        self.llm = llm
        self.check_support = check_support
        # False: judge support only; whether the sentence answers is the answer gate's
        # decision (``rag.verification.answer_gate``), made with its paragraph in view.
        self.check_answers = check_answers

    def verify(self, statement: str, evidence: str, question: str | None = None) -> Verdict:
        d = lexical_decision(statement, evidence, question)
        if d.supported is False:
            return Verdict(False, d.answers, 0.0, "lexical", d.reason)
        stage, score, reason = "lexical", 1.0, d.reason
        if d.supported is None and not self.check_support:
            # Words cannot decide, and the model's support score is not asked: the statement
            # is never shown as written (grounding shows the source sentence verbatim), so
            # what remains to judge is whether that sentence answers the question.
            reason = "shown as the source sentence, not as written"
        elif d.supported is None:
            score = self.llm.support_score(statement, evidence, question)
            stage, reason = "llm", f"P(says it)={score:.2f}"
            if score < self.llm.thresholds.support:
                return Verdict(False, d.answers, score, stage, reason)
        if question is None or not self.check_answers:
            return Verdict(True, None, score, stage, reason)
        if d.answers is False:
            return Verdict(True, False, 0.0, "lexical", "shares no content word with the question")
        a = self.llm.answer_score(evidence, question)
        ok = a >= self.llm.thresholds.answer
        reason = f"{reason}; P(answers)={a:.2f}"
        return Verdict(True, ok, min(score, a) if ok else a, "llm", reason)
