"""The lexical stage of verification: word-level checks that decide only the clear cases.

``adds_nothing`` is the faithful-by-construction floor: a statement may be shown as written
only when it is a span of its evidence sentence up to articles, auxiliaries and inflection,
with the same negations, names and numbers in the same order. ``lexical_support`` rejects a
statement that brings a number, name or negation its evidence lacks, accepts one that adds
nothing, and leaves everything else (paraphrase, reordering, dropped qualifiers) undecided
for the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import STOPWORDS, fold, stem

NEGATORS = frozenset(
    "not no never without nor neither none nobody nothing nowhere cannot n't".split()
)
# Words whose presence or absence never changes who did what: articles and auxiliaries.
FILLERS = frozenset("a an the is are was were be been being am has have had do does did".split())
# Words that put what follows them under someone's claim, a condition or a modality: evidence
# text dropped around a statement must not hold one ("critics say that X" does not state X).
SCOPE = frozenset(
    """that if whether unless although though claim claims claimed say says said according
    reportedly allegedly may might could would should must can believe believes believed hope
    hopes expect expects expected plan plans planned suggest suggests suggested deny denies
    denied unlikely likely possible possibly perhaps proposed""".split()
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
}
_TOKEN = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*")


@dataclass(frozen=True)
class Token:
    """One word of a text with its offsets and what kind of word it is."""

    raw: str
    start: int
    end: int
    key: str  # what it is matched by: a number's digits, a name's folded form, else its stem
    name: bool
    number: bool
    negator: bool
    stop: bool

    @property
    def filler(self) -> bool:
        return fold(self.raw) in FILLERS

    @property
    def content(self) -> bool:
        return not self.stop or self.negator


def tokenize(text: str) -> list[Token]:
    """Words of ``text`` with offsets; "n't" contractions count as negators."""
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        raw = m.group(0)
        norm = fold(raw).strip(".,'")
        if not norm:
            continue
        negator = norm in NEGATORS or norm.endswith("n't")
        number = any(ch.isdigit() for ch in norm) or norm in _NUMBER_WORDS
        stop = norm in STOPWORDS or (norm.endswith("'s") and norm[:-2] in STOPWORDS)
        name = raw[:1].isupper() and len(norm) > 1 and not (stop or number or negator)
        if number:
            key = _NUMBER_WORDS.get(norm, norm.replace(",", ""))
        elif negator:
            key = "not"
        elif name:
            key = norm.removesuffix("'s")
        else:
            key = stem(norm.removesuffix("'s"))
        out.append(Token(raw, m.start(), m.end(), key, name, number, negator, stop))
    return out


def _keys(tokens: list[Token]) -> set[str]:
    return {t.key for t in tokens} | {stem(fold(t.raw)) for t in tokens}


def adds_nothing(statement: str, evidence: str) -> bool:
    """True when ``statement`` says nothing its evidence sentence does not say, in its order.

    The statement, without articles and auxiliaries, must be a contiguous run of the
    evidence's words (matched by stem; numbers and names exactly), and the evidence text left
    out around it must hold no negation and no word that scopes it (say, that, if, may…).

    Example:
        >>> adds_nothing("Its main office is in Porto", "Its main office is in Porto, and a second office opened in Lyon in 2015.")
        True
        >>> adds_nothing("Its main office is not in Porto", "Its main office is in Porto.")
        False
    """  # noqa: E501
    s = [t for t in tokenize(statement) if not t.filler]
    e = [t for t in tokenize(evidence) if not t.filler]
    if not s or not any(t.content for t in s):
        return False
    n = len(s)
    for i in range(len(e) - n + 1):
        if all(e[i + j].key == s[j].key for j in range(n)):
            dropped = e[:i] + e[i + n :]
            if not any(t.negator or fold(t.raw) in SCOPE for t in dropped):
                return True
    return False


@dataclass(frozen=True)
class LexicalDecision:
    """The lexical stage's judgement: ``None`` means it cannot decide."""

    supported: bool | None
    answers: bool | None
    reason: str


def missing_facts(statement: str, evidence: str, question: str = "") -> list[str]:
    """Numbers, names and negations of ``statement`` its evidence lacks.

    A name the question supplies is not counted (the evidence may say "he"); a number or a
    negation always is.
    """
    ev = tokenize(evidence)
    ev_keys = _keys(ev)
    q_keys = _keys(tokenize(question))
    missing: list[str] = []
    s_tokens = tokenize(statement)
    for t in s_tokens:
        if t.number and t.key not in ev_keys:
            missing.append(t.raw)
        elif t.name and t.key not in ev_keys and stem(t.key) not in ev_keys:
            if t.key not in q_keys and stem(t.key) not in q_keys:
                missing.append(t.raw)
    if sum(t.negator for t in s_tokens) > sum(t.negator for t in ev):
        missing.append(next(t.raw for t in s_tokens if t.negator))
    return missing


def shares_content(a: str, b: str) -> bool:
    """True when the two texts share a content word (by stem)."""
    ka = {t.key for t in tokenize(a) if not t.stop}
    kb = {t.key for t in tokenize(b) if not t.stop}
    return bool(ka & kb)


MIN_COVERAGE = 0.5


def coverage(statement: str, evidence: str, question: str = "") -> float:
    """Share of the statement's content words found in the evidence or the question."""
    want = [t.key for t in tokenize(statement) if not t.stop]
    have = _keys(tokenize(evidence)) | _keys(tokenize(question))
    return sum(k in have for k in want) / len(want) if want else 1.0


def restates_question(statement: str, question: str) -> bool:
    """True when every content word of ``statement`` is already in ``question``: said back to
    the asker it tells nothing ("Who is Dr. Jane Roe?" → "Dr. Jane Roe").

    >>> restates_question("Dr. Jane Roe", "Who is Dr. Jane Roe?")
    True
    >>> restates_question("an economist", "Who is Dr. Jane Roe?")
    False
    """
    said = _keys([t for t in tokenize(statement) if t.content])
    return bool(said) and said <= _keys(tokenize(question))


def is_phrase(statement: str) -> bool:
    """A bare answer ("Ana Ortiz", "in 1987") rather than a sentence: it needs its question."""
    return sum(1 for t in tokenize(statement) if not t.stop) <= 3 and not any(
        fold(t.raw) in FILLERS for t in tokenize(statement)
    )


_ANSWER_PARTICLE = re.compile(r"^\s*(?:yes|no)\s*[,.;:—-]\s*", re.IGNORECASE)


def strip_answer_particle(statement: str) -> str:
    """ "Yes, X." / "No, X." is judged as X (X carries the polarity)."""
    return _ANSWER_PARTICLE.sub("", statement, count=1)


def lexical_decision(statement: str, evidence: str, question: str | None = None) -> LexicalDecision:
    """Decide support (and whether the evidence can answer) where words alone settle it."""
    statement = strip_answer_particle(statement)
    answers: bool | None = None
    if question is not None and not shares_content(evidence, question):
        answers = False
    missing = missing_facts(statement, evidence, question or "")
    if missing:
        return LexicalDecision(False, answers, f"adds {', '.join(missing[:3])}")
    if not shares_content(statement, evidence):
        return LexicalDecision(False, answers, "shares no content word with the evidence")
    if coverage(statement, evidence, question or "") < MIN_COVERAGE:
        return LexicalDecision(False, answers, "most of its words are not in the evidence")
    if adds_nothing(statement, evidence) and not (question and is_phrase(statement)):
        return LexicalDecision(True, answers, "adds nothing to the evidence")
    return LexicalDecision(None, answers, "cannot decide from words alone")


def answer_span(statement: str, evidence: str, question: str = "") -> tuple[int, int] | None:
    """Offsets in ``evidence`` of the words that answer: those of the statement that the
    question does not already hold, as the longest run of them (stopwords may sit inside).
    None when no run holds at least two thirds of those words (the statement restates the
    sentence, and no part of it stands out as the answer) or the run is most of the sentence."""
    q_keys = _keys(tokenize(question))
    s_keys = _keys([t for t in tokenize(statement) if not t.stop or t.number])
    toks = tokenize(evidence)
    hit = [
        (not t.stop or t.number) and bool(_keys([t]) & s_keys) and not _keys([t]) & q_keys
        for t in toks
    ]
    best: tuple[int, int, int] | None = None  # (hits, first, last)
    total = sum(hit)
    i = 0
    while i < len(toks):
        if not hit[i]:
            i += 1
            continue
        j, last, count = i, i, 0
        while j < len(toks) and (hit[j] or toks[j].stop and not toks[j].negator):
            if hit[j]:
                last, count = j, count + 1
            j += 1
        if best is None or count > best[0]:
            best = (count, i, last)
        i = j
    if best is None or 3 * best[0] < 2 * total:
        return None
    start, end = toks[best[1]].start, toks[best[2]].end
    sentence_chars = len(evidence.strip())
    if sentence_chars and (end - start) >= 0.8 * sentence_chars:
        return None
    return start, end
