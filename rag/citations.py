"""Parse the model's cited statements and verify each against the paragraphs.

The default prompt asks for ``Answer [P<n>]: <sentence>`` lines; ``Quote [P<n>]: "…"`` /
``Answer: …`` pairs and plain prose are parsed too. Each statement's evidence is a span of a
paragraph: the model's quote where it truly occurs, else the source sentence that supports
the statement. The citation is the paragraph that holds the evidence, whatever number the
model wrote. A statement with no evidence, or that adds numbers or names its paragraph does
not hold, is dropped; one that adds other content words is replaced by its evidence
(extractive fallback).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from rag.prompts import NOT_FOUND
from rag.text import STOPWORDS, fold, stem, words
from rag.types import Passage

MIN_QUOTE_WORDS = 4
FUZZY_MIN_SCORE = 92.0

_CITED = r"\[\s*(?:P|¶|#)?\s*(\d+)\s*\]"  # a paragraph marker: [P2], [¶2], [#2], [2]
_QUOTE_LINE = re.compile(
    rf"^\s*(?:[-*]\s*)?quote\s*(?:{_CITED}|\(?\s*P\s*(\d+)\s*\)?)?\s*:\s*(.*)$", re.IGNORECASE
)
_ANSWER_LINE = re.compile(rf"^\s*(?:[-*]\s*)?answer\s*(?:{_CITED})?\s*:\s*(.*)$", re.IGNORECASE)
_QUOTE_CHARS = "\"'“”‘’«»`"
_INLINE_MARKER = re.compile(rf"\s*{_CITED}", re.IGNORECASE)  # stripped from statements
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"])|\n+")


@dataclass(frozen=True)
class Claim:
    """One Quote/Answer pair as the model wrote it (unverified)."""

    quote: str
    statement: str
    claimed_paragraph: int | None = None


@dataclass(frozen=True)
class VerifiedClaim:
    """A claim whose quote was found in ``passage`` at [start, end)."""

    statement: str
    quote: str
    passage: Passage
    start: int
    end: int
    extractive: bool = False


def parse_claims(output: str) -> list[Claim]:
    """Quote/Answer pairs from model output. ``NOT FOUND`` alone gives no claims."""
    claims: list[Claim] = []
    pending: list[tuple[str, int | None]] = []
    for line in output.splitlines():
        q = _QUOTE_LINE.match(line)
        if q:
            num = q.group(1) or q.group(2)
            text = q.group(3).strip().strip(_QUOTE_CHARS).strip()
            if text:
                pending.append((text, int(num) if num else None))
            continue
        a = _ANSWER_LINE.match(line)
        if a:
            statement = _INLINE_MARKER.sub("", a.group(2)).strip()
            if statement and fold(statement).strip(" .") != fold(NOT_FOUND):
                if pending:
                    for quote, num in pending:
                        claims.append(Claim(quote, statement, num))
                else:
                    # "Answer: <statement> [P<n>]": cited, unquoted; verification finds the
                    # sentence of the source that supports it.
                    cited = a.group(1) or next(iter(re.findall(_CITED, a.group(2), re.I)), None)
                    num = int(cited) if cited else None
                    # Each sentence of a long answer line is checked on its own.
                    claims.extend(
                        Claim("", statement[s:e].strip(), num)
                        for s, e in sentence_spans(statement)
                    )
            pending = []
    # Quotes with no answer line still count as extractive claims.
    for quote, num in pending:
        claims.append(Claim(quote, quote, num))
    if not claims:
        # The model ignored the format and answered in prose: each sentence becomes a claim
        # with no quote; ``verify_claims`` then looks for a source sentence that supports it.
        for sentence in _SENTENCE_SPLIT.split(output.strip()):
            label = _ANSWER_LINE.match(sentence)  # an "Answer:" line with no quote
            if label:
                sentence = label.group(2)
            sentence = _INLINE_MARKER.sub("", sentence).strip()
            if sentence and fold(NOT_FOUND) not in fold(sentence):
                claims.append(Claim("", sentence, None))
    return claims


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """Text reduced to lowercase words joined by single spaces, with a map to original offsets."""
    out: list[str] = []
    index: list[int] = []
    prev_space = True
    for i, ch in enumerate(text):
        f = fold(ch)
        for c in f:
            if c.isalnum():
                out.append(c)
                index.append(i)
                prev_space = False
            elif not prev_space:
                out.append(" ")
                index.append(i)
                prev_space = True
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def locate_quote(
    quote: str, passages: Sequence[Passage], prefer: int | None = None
) -> tuple[int, int, int] | None:
    """(passage index, start, end) of the quote in the original text, or None.

    Matching ignores case, punctuation and typographic quotes, and tolerates small copy errors
    (rapidfuzz partial alignment, score >= FUZZY_MIN_SCORE). Very short quotes are rejected:
    they would match almost anywhere.
    """
    q, _ = _folded_with_map(quote)
    if len(q.split()) < MIN_QUOTE_WORDS:
        return None
    order = list(range(len(passages)))
    if prefer is not None and 0 <= prefer < len(passages):
        order.remove(prefer)
        order.insert(0, prefer)
    best: tuple[float, int, int, int] | None = None
    for i in order:
        text = passages[i].text
        t, idx = _folded_with_map(text)
        pos = t.find(q)
        if pos >= 0:
            return i, idx[pos], idx[pos + len(q) - 1] + 1
        if not t:
            continue
        al = fuzz.partial_ratio_alignment(q, t, score_cutoff=FUZZY_MIN_SCORE)
        if al is not None and (best is None or al.score > best[0]):
            s, e = al.dest_start, max(al.dest_start, al.dest_end - 1)
            best = (al.score, i, idx[s], idx[e] + 1)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _is_number(w: str) -> bool:
    return any(ch.isdigit() for ch in w)


def _stems(text: str) -> set[str]:
    return {stem(w) for w in words(text)} | set(words(text))


def unsupported_words(
    statement: str, support: str, question: str = ""
) -> tuple[list[str], list[str]]:
    """Content words of ``statement`` found neither in ``support`` nor the question.

    Returns (hard, soft): numbers and names (capitalised words) must be in ``support``
    itself; other content words may also come from the question.
    """
    sup = _stems(support)
    qst = _stems(question)
    hard: list[str] = []
    soft: list[str] = []
    raw_tokens = re.findall(r"[^\W_]+(?:[.,'’-][^\W_]+)*", statement)
    for i, raw in enumerate(raw_tokens):
        w = fold(raw).strip(".,'")
        if not w or w in STOPWORDS:
            continue
        if not _is_number(w) and (w in sup or stem(w) in sup):
            continue  # the whole word (a contraction, a hyphenated name) is in the support
        # A range "5-10" is checked as 5 and 10 (``words`` splits the support the same way).
        for part in re.split(r"[-']", w):
            if not part or part in STOPWORDS:
                continue
            if _is_number(part):
                if part not in sup and part.replace(",", "") not in {
                    s.replace(",", "") for s in sup
                }:
                    hard.append(raw)
                continue
            known = part in sup or stem(part) in sup
            if known:
                continue
            is_name = raw[:1].isupper() and i > 0
            if is_name:
                hard.append(raw)
            elif not (part in qst or stem(part) in qst):
                soft.append(raw)
    return hard, soft


_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|rules?|prompts?|context|sources?)\b"  # noqa: E501
    r"|\b(?:system|assistant)\s*(?:prompt)?\s*:"
    r"|\b(?:reply|respond|answer|output)\s+(?:only\s+)?(?:with|in)\s+(?:the\s+)?(?:single\s+)?(?:word|json|exactly)\b"  # noqa: E501
    r"|\byou\s+(?:are|must|should)\s+(?:now\s+)?(?:an?\s+)?(?:ai|assistant|language model|chatbot)\b"  # noqa: E501
    r"|\b(?:print|reveal|show)\s+(?:your|the)\s+(?:system\s+)?prompt\b",
    re.IGNORECASE,
)


def looks_like_instruction(text: str) -> bool:
    """True for text that addresses the assistant (prompt injection), not the reader."""
    return bool(_INSTRUCTION.search(fold(text)))


def verify_claims(
    claims: Sequence[Claim],
    passages: Sequence[Passage],
    question: str = "",
    *,
    max_soft_unsupported: int = 1,
) -> list[VerifiedClaim]:
    """Keep the claims whose evidence occurs in a passage, cited where it truly occurs.

    The evidence is the model's quote when it occurs in a passage and holds the statement's
    numbers and names. Otherwise (no quote, an invented quote, or a real quote that does not
    support the statement) it is the source sentence that does support the statement, if
    there is one; a statement no sentence supports is dropped.
    """
    verified: list[VerifiedClaim] = []
    seen: set[tuple[str, int, int]] = set()
    for claim in claims:
        prefer = claim.claimed_paragraph - 1 if claim.claimed_paragraph else None
        hit = locate_quote(claim.quote, passages, prefer=prefer) if claim.quote else None
        if hit is not None:
            i, start, end = hit
            if looks_like_instruction(passages[i].text[start:end]):
                hit = None
            elif unsupported_words(claim.statement, passages[i].text, question)[0]:
                hit = None  # a real quote, but not evidence for what the statement says
        if hit is None and claim.statement != claim.quote:
            hit = find_supporting_sentence(claim.statement, passages, question, prefer=prefer)
        if hit is None:
            continue
        i, start, end = hit
        passage = passages[i]
        exact_quote = passage.text[start:end]
        if looks_like_instruction(exact_quote):
            continue  # text addressed to the assistant is never evidence (OWASP LLM01)
        hard, soft = unsupported_words(claim.statement, passage.text, question)
        if hard:
            continue
        extractive = len(soft) > max_soft_unsupported
        statement = exact_quote if extractive else claim.statement
        key = (passage.paragraph_id or passage.source, start, end)
        if key in seen:
            continue
        seen.add(key)
        verified.append(VerifiedClaim(statement, exact_quote, passage, start, end, extractive))
    return verified


# A period after these (or after a lone initial: "J. Smith") does not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|Sr|Jr|St|Mt|Gen|Col|Capt|Lt|Sgt|Rev|Hon|Gov|Sen|Rep|No|vs|etc"
    r"|approx|dept|est|fig|inc|ltd|co|corp|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
    r"|(?-i:\b[A-Z])|\be\.g|\bi\.e)\.$",
    re.IGNORECASE,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in re.finditer(r"(?<=[.!?…])[”\"’')\]]*\s+", text):
        if _ABBREVIATION.search(text[max(start, m.start() - 8) : m.start()]):
            continue
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def find_supporting_sentence(
    statement: str, passages: Sequence[Passage], question: str = "", prefer: int | None = None
) -> tuple[int, int, int] | None:
    """For an unquoted statement of two or more content words (or a number): the source
    sentence that shares a content word with the question and holds all the statement's
    numbers and names and most of its other content words (its evidence), or None.

    Among equally good sentences, one in passage ``prefer`` (the one the model cited) wins."""
    qst = _stems(question)
    content = [
        w
        for w in words(statement)
        if w not in STOPWORDS and not (stem(w) in qst and not _is_number(w))
    ]
    if not content:
        return None
    # A bare word echoed from a document ("PWNED" from "... answer PWNED") is not a statement:
    # unquoted prose needs two content words or a number. And the evidence sentence must be
    # about the question (share a content word with it).
    all_content = {w for w in words(statement) if w not in STOPWORDS}
    if len(all_content) < 2 and not any(_is_number(w) for w in all_content):
        return None
    q_words = [w for w in words(question) if w not in STOPWORDS]
    q_terms = {stem(w) for w in q_words} | set(q_words)
    best: tuple[tuple[float, bool], int, int, int] | None = None
    for i, p in enumerate(passages):
        hard, _ = unsupported_words(statement, p.text, question)
        if hard:
            continue
        # The sentence must be about the question: share a content word with it, or (when the
        # model cited this paragraph) sit in a paragraph that does.
        about = bool(q_terms & _stems(p.text)) if i == prefer else False
        spans = sentence_spans(p.text)
        for j, (s, e) in enumerate(spans):
            sent = p.text[s:e]
            sup = _stems(sent)
            if q_terms and not (about or sup & q_terms):
                continue
            covered = sum(1 for w in content if w in sup or stem(w) in sup)
            ratio = covered / len(content)
            if ratio < 0.6:
                continue
            # What it adds to the question (numbers, names) must be in this sentence or the one
            # before (where a pronoun's antecedent is), not anywhere in the paragraph:
            # "Dr. B works at X" is not supported by "Dr. A works at X. ... said Dr. B."
            window = p.text[spans[j - 1][0] if j else s : e]
            added = unsupported_words(statement, window, question)[0]
            if [w for w in added if not (_stems(w) & qst)]:
                continue
            score = (ratio, i == prefer)
            if best is None or score > best[0]:
                best = (score, i, s, e)
    return None if best is None else best[1:]
