"""What every verifier returns (``Verdict``) and the interface it implements (``Verifier``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Verdict:
    """One statement judged against one evidence sentence.

    ``supported``: the evidence states exactly this statement. ``answers``: the evidence answers
    the question (None when no question was given, or when the statement was already rejected
    and the answer check was not spent). ``score``: the deciding score in [0, 1] (the model's
    P(yes) for LLM stages, 1/0 for the lexical stage). ``stage``: "lexical" or "llm".
    A statement is accepted when ``accept`` is true.
    """

    supported: bool
    answers: bool | None
    score: float
    stage: str
    reason: str

    @property
    def accept(self) -> bool:
        return self.supported and self.answers is not False


class Verifier(Protocol):
    """Judges whether ``evidence`` states ``statement`` and answers ``question``."""

    def verify(self, statement: str, evidence: str, question: str | None = None) -> Verdict: ...
