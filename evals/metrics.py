"""Evaluation metrics: pure functions over plain values (no models, no I/O).

Conventions (see evals/README.md for the full definitions):

* A paragraph is *relevant* when its text contains one of the question's evidence strings
  (``contains_evidence``: case, typographic quotes and whitespace are ignored).
* Evidence coverage: when ``all_required`` is false (the default) any one evidence string
  suffices; when true (questions whose answer needs several paragraphs, marked
  ``all_answers: true`` in the question file) coverage is the share of evidence strings found.
* A metric that does not apply to a question returns ``None`` and is left out of the average.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import fold  # case-folded NFKC, typographic quotes and dashes made plain

# -- evidence --------------------------------------------------------------------------------


def _norm_space(text: str) -> str:
    return " ".join(fold(text).split())


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    """True when ``text`` contains at least one evidence string."""
    t = _norm_space(text)
    return any(_norm_space(e) in t for e in evidence if e.strip())


def evidence_coverage(
    texts: Sequence[str], evidence: Sequence[str], all_required: bool = False
) -> float:
    """How much of the evidence the texts hold together, in [0, 1].

    ``all_required=False``: 1.0 if any evidence string is in any text, else 0.0.
    ``all_required=True``: the share of evidence strings found in at least one text.
    No evidence at all gives 0.0.
    """
    ev = [e for e in evidence if e.strip()]
    if not ev:
        return 0.0
    normed = [_norm_space(t) for t in texts]
    found = [any(_norm_space(e) in t for t in normed) for e in ev]
    if all_required:
        return sum(found) / len(ev)
    return 1.0 if any(found) else 0.0


# -- retrieval -------------------------------------------------------------------------------


def recall_at_k(
    retrieved_texts: Sequence[str], evidence: Sequence[str], k: int, all_required: bool = False
) -> float:
    """Evidence coverage of the top ``k`` retrieved paragraphs."""
    return evidence_coverage(list(retrieved_texts[:k]), evidence, all_required)


def reciprocal_rank(
    retrieved_texts: Sequence[str], evidence: Sequence[str], k: int | None = None
) -> float:
    """1 / rank of the first retrieved paragraph that contains evidence (0 if none in the top k)."""
    for rank, text in enumerate(
        retrieved_texts[: k if k is not None else len(retrieved_texts)], start=1
    ):
        if contains_evidence(text, evidence):
            return 1.0 / rank
    return 0.0


def rank_of(ranked: Sequence[object], gold: object) -> int | None:
    """1-based position of ``gold`` in ``ranked``, or None."""
    for i, item in enumerate(ranked, start=1):
        if item == gold:
            return i
    return None


# -- answer correctness (SQuAD) --------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower case, drop punctuation, drop articles, squeeze whitespace.

    Typographic quotes and dashes are first made plain (so “ ” ’ count as punctuation too).
    """
    s = fold(s)
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between one prediction and one gold answer."""
    p = normalize_answer(prediction).split()
    g = normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(p)
    recall = same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _contains_norm(haystack: str, needle: str) -> bool:
    n = normalize_answer(needle)
    if not n:
        return False
    return f" {n} " in f" {normalize_answer(haystack)} "


def answer_contains(prediction: str, answers: Sequence[str], all_answers: bool = False) -> float:
    """1.0 when the normalised gold answer occurs (as whole words) in the normalised prediction.

    ``all_answers``: every gold string must occur; otherwise any one suffices.
    """
    if not answers:
        return 0.0
    hits = [_contains_norm(prediction, a) for a in answers]
    return float(all(hits) if all_answers else any(hits))


def answer_f1(prediction: str, answers: Sequence[str], all_answers: bool = False) -> float:
    """SQuAD F1: the best token F1 over gold answers (all golds joined when ``all_answers``)."""
    if not answers:
        return 0.0
    if all_answers:
        return token_f1(prediction, " ".join(answers))
    return max(token_f1(prediction, a) for a in answers)


def strip_markers(answer_text: str) -> str:
    """The answer without citation markers such as ``[1]``."""
    return " ".join(re.sub(r"\[\d+\]", " ", answer_text).split())


# -- citations (ALCE-style, evidence-based) --------------------------------------------------


@dataclass(frozen=True)
class CitationScores:
    """Citation recall and precision of one answer (None: not applicable)."""

    recall: float | None
    precision: float | None
    n_citations: int
    n_relevant: int


def citation_scores(
    cited_texts: Sequence[str],
    evidence: Sequence[str],
    *,
    answerable: bool,
    abstained: bool,
    all_required: bool = False,
) -> CitationScores:
    """ALCE-style citation recall and precision, with gold evidence standing in for the NLI judge.

    * recall: the evidence coverage of all cited paragraphs together (the answer is "recalled"
      when its citations jointly contain the evidence).
    * precision: the share of citations that are not irrelevant; a citation is irrelevant when
      its paragraph contains no evidence (alone it supports nothing, and removing it never
      changes what the others cover). As in ALCE, if the citations jointly support nothing
      (recall 0), no citation gets precision credit.

    Empty cases:
    * abstention (any question): both None (not applicable; see the abstention metrics);
    * answerable, answered with no citations: recall 0, precision None (no citation to judge);
    * unanswerable, answered: recall None (no evidence exists); precision 0 if it cited
      anything (no citation can contain evidence), None if it cited nothing.
    """
    n = len(cited_texts)
    if abstained:
        return CitationScores(None, None, n, 0)
    if not answerable:
        return CitationScores(None, 0.0 if n else None, n, 0)
    if n == 0:
        return CitationScores(0.0, None, 0, 0)
    recall = evidence_coverage(cited_texts, evidence, all_required)
    relevant = sum(1 for t in cited_texts if contains_evidence(t, evidence))
    precision = relevant / n if recall > 0 else 0.0
    return CitationScores(recall, precision, n, relevant)


# -- faithfulness ----------------------------------------------------------------------------

_STATEMENT = re.compile(r"(.+?)\s*\[(\d+)\](?=\s|$)", re.DOTALL)


def split_statements(answer_text: str) -> list[tuple[str, int]]:
    """(statement, marker) pairs of a composed answer ``"S1. [1] S2. [2]"``, in order."""
    return [(m.group(1).strip(), int(m.group(2))) for m in _STATEMENT.finditer(answer_text.strip())]


def pair_statements(answer_text: str, citations: Sequence[dict]) -> list[tuple[str, dict]]:
    """Each citation with the statement it supports.

    The chain writes one sentence (ending in its marker) per citation, in citation order, so
    sentence i belongs to citation i. If the counts differ, a citation takes the first unused
    sentence with its marker, else the whole answer.
    """
    stmts = split_statements(answer_text)
    if len(stmts) == len(citations) and all(
        m == c.get("marker", m) for (_, m), c in zip(stmts, citations, strict=True)
    ):
        return [(s, c) for (s, _), c in zip(stmts, citations, strict=True)]
    used: set[int] = set()
    out = []
    for c in citations:
        pick = None
        for i, (_s, m) in enumerate(stmts):
            if i not in used and m == c.get("marker"):
                pick = i
                break
        if pick is None:
            out.append((strip_markers(answer_text), c))
        else:
            used.add(pick)
            out.append((stmts[pick][0], c))
    return out


# -- abstention ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbstentionScores:
    """Positive class: the question should be abstained on (``answerable == False``)."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    false_abstention_rate: float | None


def abstention_scores(answerable: Sequence[bool], abstained: Sequence[bool]) -> AbstentionScores:
    """Precision, recall and F1 of abstaining, and the false-abstention rate
    (abstentions on answerable questions / answerable questions). None when undefined."""
    tp = fp = fn = tn = 0
    for ans, abst in zip(answerable, abstained, strict=True):
        if not ans and abst:
            tp += 1
        elif ans and abst:
            fp += 1
        elif not ans and not abst:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    far = fp / (fp + tn) if fp + tn else None
    return AbstentionScores(tp, fp, fn, tn, precision, recall, f1, far)


# -- aggregation -----------------------------------------------------------------------------


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the applicable values (None ignored); None if none apply."""
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation (numpy's default); None if empty."""
    xs = sorted(values)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def agreement(a: Sequence[bool | None], b: Sequence[bool | None]) -> tuple[float | None, int]:
    """Share of items where both verdicts exist and are equal, over items where both exist."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        return None, 0
    return sum(1 for x, y in pairs if x == y) / len(pairs), len(pairs)
