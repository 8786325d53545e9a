"""Parse the model's answer format into claims, and locate quoted text in the paragraphs.

The default prompt asks for ``Answer [P<n>]: <sentence>`` lines; ``Quote [P<n>]: "…"`` /
``Answer: …`` pairs and plain prose are parsed too. Whether a claim is true to its source is
decided elsewhere (``rag.grounding`` with a ``rag.verification`` verifier).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from rag.prompts import NOT_FOUND
from rag.sentences import sentence_spans
from rag.text import fold
from rag.types import Passage

__all__ = [
    "Claim",
    "left_the_format",
    "locate_quote",
    "parse_claims",
    "sentence_spans",
]

MIN_QUOTE_WORDS = 4
FUZZY_MIN_SCORE = 92.0

_CITED = r"\[\s*(?:P|¶|#)?\s*(\d+)\s*\]"  # a paragraph marker: [P2], [¶2], [#2], [2]
_QUOTE_LINE = re.compile(
    rf"^\s*(?:[-*]\s*)?quote\s*(?:{_CITED}|\(?\s*P\s*(\d+)\s*\)?)?\s*:\s*(.*)$", re.IGNORECASE
)
_ANSWER_LINE = re.compile(rf"^\s*(?:[-*]\s*)?answer\s*(?:{_CITED})?\s*:\s*(.*)$", re.IGNORECASE)
_QUOTE_CHARS = "\"'“”‘’«»`"
_INLINE_MARKER = re.compile(rf"\s*{_CITED}", re.IGNORECASE)  # stripped from statements


@dataclass(frozen=True)
class Claim:
    """One Quote/Answer pair as the model wrote it (unverified)."""

    quote: str
    statement: str
    claimed_paragraph: int | None = None


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
                        Claim("", statement[s:e].strip(), num) for s, e in sentence_spans(statement)
                    )
            pending = []
    # Quotes with no answer line still count as extractive claims.
    for quote, num in pending:
        claims.append(Claim(quote, quote, num))
    if not claims:
        # The model ignored the format and answered in prose: each sentence becomes a claim
        # with no quote; grounding then looks for a source sentence that states it.
        lines = [line for line in output.strip().split("\n") if line.strip()]
        for sentence in (line[a:b] for line in lines for a, b in sentence_spans(line)):
            label = _ANSWER_LINE.match(sentence)  # an "Answer:" line with no quote
            if label:
                sentence = label.group(2)
            sentence = _INLINE_MARKER.sub("", sentence).strip()
            if sentence and fold(NOT_FOUND) not in fold(sentence):
                claims.append(Claim("", sentence, None))
    return claims


def left_the_format(output: str) -> bool:
    """True when the model has written an ``Answer`` line and then a complete line that is
    neither a ``Quote`` nor an ``Answer`` line (a list, an explanation), or that repeats an
    earlier line: ``parse_claims`` reads nothing after the first, and a repeated statement adds
    nothing, so generation can stop there."""
    answered = False
    seen: set[str] = set()
    for line in output.split("\n")[:-1]:  # complete lines only
        text = line.strip()
        if text and text in seen:
            return True
        seen.add(text)
        if _ANSWER_LINE.match(line) or _QUOTE_LINE.match(line):
            answered = answered or bool(_ANSWER_LINE.match(line))
        elif text and answered:
            return True
    return False


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
