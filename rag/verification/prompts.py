"""The verification questions: the model's P(yes) for the first reply token is the score.

One fixed conversation of worked examples (both kinds of question) comes first, so it is read
once and kept as a llama.cpp state (``rag.verification.scoring``); the support and the answer
question about one sentence then differ only in their last lines. The examples use an invented
institute, not any document the project is evaluated on.
"""

from __future__ import annotations

VERIFY_SYSTEM = """You check one sentence taken from a document. Reply with one word: yes or no."""

SUPPORT_USER = """Sentence: {evidence}
Statement: {statement}
Does the sentence say exactly what the statement says, with the same people in the same roles, \
the same numbers and the same negation?"""

ANSWER_USER = """Sentence: {evidence}
Question: {question}
Does the sentence answer this exact question?"""

PHRASE_STATEMENT = "The answer to “{question}” is: {statement}"

_E1 = "The Lumen Institute was founded in 1987 by Ana Ortiz."
_E2 = "Its main office is in Porto, and a second office opened in Lyon in 2015."
_E3 = "The plan was criticised by Dr. Jane Roe, an economist."
VERIFY_EXAMPLES: tuple[tuple[str, str], ...] = (
    (SUPPORT_USER.format(evidence=_E1, statement="Ana Ortiz founded the Lumen Institute."), "yes"),
    (
        SUPPORT_USER.format(
            evidence=_E1, statement="The Lumen Institute founded Ana Ortiz's firm."
        ),
        "no",
    ),
    (ANSWER_USER.format(evidence=_E1, question="Who runs the Lumen Institute today?"), "no"),
    (SUPPORT_USER.format(evidence=_E2, statement="Its main office is not in Porto."), "no"),
    (ANSWER_USER.format(evidence=_E2, question="When did the Lyon office open?"), "yes"),
    (
        SUPPORT_USER.format(evidence=_E2, statement="The second office opened in Lyon in 2016."),
        "no",
    ),
    (ANSWER_USER.format(evidence=_E2, question="When did the Porto office open?"), "no"),
    (SUPPORT_USER.format(evidence=_E2, statement="A Lyon office was opened in 2015."), "yes"),
    (ANSWER_USER.format(evidence=_E3, question="What does Dr. Jane Roe do?"), "yes"),
    (SUPPORT_USER.format(evidence=_E3, statement="Dr. Jane Roe praised the plan."), "no"),
)


def _verify_messages(last: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": VERIFY_SYSTEM}]
    for user, reply in VERIFY_EXAMPLES:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return [*messages, {"role": "user", "content": last}]


def support_messages(statement: str, evidence: str) -> list[dict[str, str]]:
    """Chat messages asking whether ``evidence`` states ``statement``."""
    return _verify_messages(SUPPORT_USER.format(evidence=evidence, statement=statement))


def answer_messages(evidence: str, question: str, section: str = "") -> list[dict[str, str]]:
    """Chat messages asking whether ``evidence`` answers ``question``. ``section`` names where
    the sentence stands (its document and heading): a sentence such as "The project cost 38
    million euros." answers a question about one named project only in its document."""
    last = ANSWER_USER.format(evidence=evidence, question=question)
    return _verify_messages(f"Section: {section}\n{last}" if section else last)
