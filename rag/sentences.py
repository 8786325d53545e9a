"""Split text into sentences (character spans): the one sentence splitter of ``rag`` and the UI.

pysbd (the Golden Rules segmenter) does the splitting. It keeps a single capital letter and its
period together as an initial ("J. Smith"), which also keeps "World War I. Then" and "vitamin
C. Eat" in one sentence; ``sentence_spans`` splits those two shapes after it (see
``_ends_at_letter``).
"""

from __future__ import annotations

import functools
import re

import pysbd

from rag.text import STOPWORDS

# A lone capital letter and its period inside a sentence, then the next word: "I. Then".
_LETTER_STOP = re.compile(r"(?:(?<=\s)|^)(?P<letter>[A-Z])\.\s+(?=(?P<next>[A-Z][^\W_]*))")
_WORD_BEFORE = re.compile(r"([^\W_]+)\s+$")
# A line break inside a paragraph is a wrapped line unless a blank line or a list item follows.
_SOFT_BREAK = re.compile(r"\n(?![ \t]*(?:\n|(?:[-*+•]|\d{1,3}[.)])[ \t]))")


def _ends_at_letter(text: str, match: re.Match[str]) -> bool:
    """Whether a capital letter and its period end a sentence rather than stand as an initial.

    They do when the next word is a function word ("World War I. Then", "No. The") or when a
    common lower-case word names the letter ("vitamin C. Eat", "type A. The"); an initial
    follows a name, a title or a function word ("Dr. J. Smith", "written by J. Smith").
    """
    if match.group("next").casefold() in STOPWORDS:
        return True
    before = _WORD_BEFORE.search(text, 0, match.start())
    return bool(before and before.group(1).islower() and before.group(1) not in STOPWORDS)


def _split_letters(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for m in _LETTER_STOP.finditer(text, start, end):
        if _ends_at_letter(text, m):
            spans.append((start, m.start() + 2))  # the letter and its period
            start = m.end()
    spans.append((start, end))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


@functools.lru_cache(maxsize=4096)
def _spans(text: str) -> tuple[tuple[int, int], ...]:
    # A segmenter per call: pysbd keeps the text being split on the instance. pysbd ends a
    # sentence at every line break; wrapped lines are joined (same length, same offsets).
    unwrapped = _SOFT_BREAK.sub(" ", text)
    found = pysbd.Segmenter(language="en", clean=False, char_span=True).segment(unwrapped)
    # pysbd locates each sentence back in the text by search; text it could not place (it
    # rewrites some characters) is kept as a sentence of its own rather than lost.
    bounds: list[tuple[int, int]] = []
    pos = 0
    for s in found:
        if s.start < pos:
            continue
        if s.start > pos:
            bounds.append((pos, s.start))
        bounds.append((s.start, s.end))
        pos = s.end
    if pos < len(text):
        bounds.append((pos, len(text)))
    spans = []
    for s, e in bounds:
        for a, b in _split_letters(text, s, e):
            if (t := _trim(text, a, b)) is not None:
                spans.append(t)
    return tuple(spans)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, without surrounding whitespace.

    Example:
        >>> t = "Dr. J. Smith came. He left."
        >>> [t[s:e] for s, e in sentence_spans(t)]
        ['Dr. J. Smith came.', 'He left.']
    """
    return list(_spans(text))


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (``sentence_spans`` as strings)."""
    return [text[s:e] for s, e in _spans(text)]
