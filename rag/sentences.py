"""Split text into sentences (character spans): the one sentence splitter of ``rag`` and the UI.

pysbd (the Golden Rules segmenter) does the splitting, with three corrections: it keeps a
single capital letter and its period together as an initial ("J. Smith"), which also keeps
"World War I. Then" and "vitamin C. Eat" in one sentence, so those two shapes are split after
it (``_ends_at_letter``); it cuts before "(a)" inside a sentence and after the "." of
".idlerc", which are joined back (``_goes_on``); and a long paragraph is given to it in pieces
(``_blocks``), its time growing faster than the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import pysbd

from rag.text import STOPWORDS, words

# A lone capital letter and its period inside a sentence, then the next word: "I. Then".
_LETTER_STOP = re.compile(r"(?:(?<=\s)|^)(?P<letter>[A-Z])\.\s+(?=(?P<next>[A-Z][^\W_]*))")
_WORD_BEFORE = re.compile(r"([^\W_]+)\s+$")
# Where a long text may be cut before pysbd reads it: after a sentence's end mark.
_SENTENCE_END = re.compile(r"[.!?…][\"”’')\]]*\s+")
_BLOCK = 2000
_ENDED = re.compile(r"[.!?…][\"”’')\]]*$")
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
    before = _WORD_BEFORE.search(text, max(0, match.start() - 64), match.start())
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


def _goes_on(text: str, at: int) -> bool:
    """Whether the sentence before ``at`` continues after it: no space there (pysbd cuts
    "the .idlerc file" after its "."), or no end mark before it and no line break around it."""
    if 0 < at < len(text) and not text[at - 1].isspace() and not text[at].isspace():
        return True
    start = at
    while start > 0 and text[start - 1].isspace():
        start -= 1
    end = at
    while end < len(text) and text[end].isspace():
        end += 1
    return "\n" not in text[start:end] and not _ENDED.search(text, max(0, start - 8), start)


def _blocks(text: str) -> Iterator[tuple[int, int]]:
    """``text`` in pieces of at most ``_BLOCK`` characters, each cut after a sentence's end
    where there is one: pysbd's time grows with the square of a text's length (18,000
    characters of "(a) (b) [c]" take it 6 s), and a document can hold a paragraph of any size."""
    start = 0
    while len(text) - start > _BLOCK:
        window = text[start : start + _BLOCK]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window, _BLOCK // 2)), default=0)
        cut = cut or window.rfind(" ", _BLOCK // 2) + 1 or _BLOCK
        yield start, start + cut
        start += cut
    yield start, len(text)


def _pysbd_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """pysbd's sentences of ``text[start:end]``, located in ``text`` one after the other (its
    own ``char_span`` searches the whole text again for each sentence)."""
    # A segmenter per call: pysbd keeps the text being split on the instance.
    segmenter = pysbd.Segmenter(language="en", clean=False)
    pos = start
    for sentence in segmenter.processor(text[start:end]).process():
        found = text.find(sentence, pos, end) if sentence else -1
        if found >= 0:
            yield found, found + len(sentence)
            pos = found + len(sentence)


@functools.lru_cache(maxsize=4096)
def _spans(text: str) -> tuple[tuple[int, int], ...]:
    # pysbd ends a sentence at every line break; wrapped lines are joined (same offsets).
    unwrapped = _SOFT_BREAK.sub(" ", text)
    # Text pysbd does not return verbatim (it rewrites some characters) is kept as a sentence
    # of its own rather than lost.
    bounds: list[tuple[int, int]] = []
    pos = 0
    for block_start, block_end in _blocks(unwrapped):
        for s, e in _pysbd_spans(unwrapped, block_start, block_end):
            if s > pos:
                bounds.append((pos, s))
            bounds.append((s, e))
            pos = e
    if pos < len(text):
        bounds.append((pos, len(text)))
    # pysbd also splits before an enumeration inside a sentence ("notes (a) and (b) first.")
    # and inside a word (".idlerc"): such a piece goes on into the next.
    pieces: list[tuple[int, int]] = []
    for s, e in bounds:
        if pieces and _goes_on(unwrapped, s):
            pieces[-1] = (pieces[-1][0], e)
        else:
            pieces.append((s, e))
    spans = []
    for s, e in pieces:
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


_PRONOUNS = frozenset("he she they it his her their its him them this these".split())
_QUOTES = {"“": "”", '"': '"', "«": "»", "„": "“"}  # opening mark: its closing mark


def refers_back(sentence: str) -> bool:
    """True when the sentence needs the one before it to say whom or what it means: one of
    its first four words is a pronoun (he, it, they're, this…), or it is a quotation and
    nothing else (“Trade will double by 2030.”), whose speaker a sentence before names."""
    if any(w.split("'")[0] in _PRONOUNS for w in words(sentence)[:4]):
        return True
    text = sentence.strip().rstrip(".!?…")  # a full stop may stand outside the quotation
    close = _QUOTES.get(text[:1])
    return close is not None and len(text) > 2 and text.endswith(close) and close not in text[1:-1]
