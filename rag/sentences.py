"""Split text into sentences (character spans), keeping abbreviations and initials intact."""

from __future__ import annotations

import re

# A period after these (or after a lone initial: "J. Smith") does not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|Sr|Jr|St|Mt|Gen|Col|Capt|Lt|Sgt|Rev|Hon|Gov|Sen|Rep|No|vs|etc"
    r"|approx|dept|est|fig|inc|ltd|co|corp|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
    r"|(?-i:\b[A-Z])|\be\.g|\bi\.e)\.$",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(r"(?<=[.!?…])[”\"’')\]]*\s+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``.

    Example:
        >>> t = "Dr. J. Smith came. He left."
        >>> [t[s:e] for s, e in sentence_spans(t)]
        ['Dr. J. Smith came.', 'He left.']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if _ABBREVIATION.search(text[max(start, m.start() - 8) : m.start()]):
            continue
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans
