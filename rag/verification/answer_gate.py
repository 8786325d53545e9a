"""The answer gate: does a sentence that states the model's statement answer the question?

A logistic regression over signals of the sentence: ``signals`` computes the candidates (the
model's yes/no answer check on the sentence read with its section, words and names of the
question found in the sentence and paragraph, whether the statement's new words are the
source's and of the kind asked for, the retriever's rank and similarity, how sure the model
was of the words it wrote); the fitted file
names the ones the gate uses, chosen out of fold. Fitted on labelled SQuAD development
questions by ``bench/answer_gate.py`` and kept in ``answer_gate.json`` with the threshold
chosen there; nothing here is set by hand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.text import content_terms, fold, names, words
from rag.verification.lexical import lexical_decision

GATE_FILE = Path(__file__).with_name("answer_gate.json")
# The threshold for the reader's best-ranked sentences, taken when the model's statements
# leave the question unanswered (chosen by ``bench/answer_gate.py pick-fit``).
PICK_FILE = Path(__file__).with_name("answer_gate_pick.json")
# What ``signals`` computes: the candidates a gate may be fitted on.
SIGNALS = (
    "logit_answers",
    "lexically_supported",
    "no_question_word",
    "q_words_in_sentence",
    "q_words_in_paragraph",
    "q_names_in_sentence",
    "q_names_in_paragraph",
    "distinctive_in_paragraph",
    "new_words_in_sentence",
    "new_words",
    "type_fit",
    "inv_rank",
    "similarity",
    "answer_logprob",
)

_YEAR = re.compile(r"\b1\d{3}\b|\b20\d{2}\b")
_TIME_WORDS = frozenset(
    "january february march april may june july august september october november december "
    "century centuries decade decades year years day days week weeks month months".split()
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
    "hundred hundreds thousand thousands million millions billion billions dozen half".split()
)


def _share(wanted: set[str], have: set[str]) -> float:
    return 1.0 if not wanted else len(wanted & have) / len(wanted)


def type_fit(question: str, answer: str) -> float:
    """1 when ``answer`` has the kind of words the question asks for (a date for "when", a
    number for "how many", a capitalised name for "who"/"where"), 0 when it lacks them,
    0.5 when the question asks for no particular kind."""
    q = fold(question)
    a_words = [fold(w) for w in words(answer)]
    has_number = any(ch.isdigit() for ch in answer) or any(w in _NUMBER_WORDS for w in a_words)
    if re.search(r"\bhow (many|much|long|old|far|large|big|high)\b|\bwhat (percent|percentage)", q):
        return float(has_number)
    if re.search(r"\bwhen\b|\bwhat (year|date|century|decade|month|day)\b|\bwhich year\b", q):
        return float(bool(_YEAR.search(answer)) or any(w in _TIME_WORDS for w in a_words))
    if re.search(r"^\s*(who|whom|whose)\b|\bwhere\b", q):
        return float(any(t[:1].isupper() for t in answer.split()))
    return 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def signals(
    *,
    question: str,
    statement: str,
    sentence: str,
    paragraph: str,
    p_answers: float,
    rank: int,
    similarity: float,
    distinctive: set[str] | None,
    answer_logprob: float | None,
) -> dict[str, float]:
    """The gate's inputs, by name (one function for fitting and for answering).
    ``answer_logprob``: the lowest log-probability among the tokens the model wrote the
    statement with (NaN when unknown: a gate that uses it then refuses to score)."""
    d = lexical_decision(statement, sentence, question)
    q_terms = set(content_terms(question))
    sent_terms = set(content_terms(sentence))
    para_terms = set(content_terms(paragraph))
    new = [w for w in content_terms(statement) if w not in q_terms]
    new_words = " ".join(w for w in statement.split() if set(content_terms(w)) - q_terms)
    q_names = names(question)
    return {
        "logit_answers": _logit(p_answers),
        "lexically_supported": float(d.supported is True),
        "no_question_word": float(d.answers is False),
        "q_words_in_sentence": _share(q_terms, sent_terms),
        "q_words_in_paragraph": _share(q_terms, para_terms),
        "q_names_in_sentence": _share(q_names, {fold(w) for w in words(sentence)}),
        "q_names_in_paragraph": _share(q_names, {fold(w) for w in words(paragraph)}),
        "distinctive_in_paragraph": 1.0
        if distinctive is None
        else _share(set(distinctive), para_terms),
        "new_words_in_sentence": _share(set(new), sent_terms),
        "new_words": math.log1p(len(set(new))),
        "type_fit": type_fit(question, new_words or statement),
        "inv_rank": 1.0 / max(1, rank),
        "similarity": similarity,
        "answer_logprob": math.nan if answer_logprob is None else answer_logprob,
    }


@dataclass(frozen=True)
class AnswerGate:
    """A fitted logistic regression: P(the sentence answers the question)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def score(self, feats: Mapping[str, float]) -> float:
        missing = [n for n in self.names if math.isnan(feats[n])]
        if missing:
            raise ValueError(f"the answer gate needs {', '.join(missing)}")
        z = self.intercept + sum(
            c * (feats[n] - m) / s
            for n, m, s, c in zip(self.names, self.mean, self.scale, self.coef, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z))


def gate_from_dict(data: Mapping[str, object]) -> AnswerGate:
    def floats(key: str) -> tuple[float, ...]:
        return tuple(float(x) for x in data[key])  # type: ignore[union-attr]

    return AnswerGate(
        names=tuple(str(n) for n in data["features"]),  # type: ignore[union-attr]
        mean=floats("mean"),
        scale=floats("scale"),
        coef=floats("coef"),
        intercept=float(data["intercept"]),  # type: ignore[arg-type]
        threshold=float(data["threshold"]),  # type: ignore[arg-type]
    )


@lru_cache(maxsize=4)
def load_answer_gate(path: Path = GATE_FILE) -> AnswerGate:
    """The shipped gate (``answer_gate.json``)."""
    return gate_from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Pick:
    """How many of the reader's best-ranked sentences the answer check scores when no statement
    of the model's passes, the P(yes) one needs to be shown as the answer, and the P(yes) from
    which, under that, it is shown as an abstention's closest evidence."""

    top: int
    threshold: float
    evidence_floor: float = 1.0  # 1.0: never shown as evidence


@lru_cache(maxsize=4)
def load_pick(path: Path = PICK_FILE) -> Pick:
    """The shipped setting (``answer_gate_pick.json``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return Pick(
        top=int(data["top"]),
        threshold=float(data["threshold"]),
        evidence_floor=float(data["evidence_floor"]),
    )
