"""Word-level text normalisation shared by keyword search and citation verification."""

from __future__ import annotations

import functools
import re
import unicodedata

import snowballstemmer

# A compact English stopword list (function words only). Written here because the
# well-kept lists live in packages that are slow to import (scikit-learn) or download
# their data at run time (nltk).
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves s t don shall may might must let us via per whose within without upon
    onto says said tell told does did what's it's become became becomes becoming""".split()
)

_TYPO = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2032": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)
_TYPO_CHARS = re.compile("[" + "".join(map(chr, _TYPO)) + "]")
_WORD = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*", re.UNICODE)


def fold(text: str) -> str:
    """Case-folded NFKC text with typographic quotes and dashes made plain."""
    text = unicodedata.normalize("NFKC", text)
    if _TYPO_CHARS.search(text):  # a search is 6x cheaper than translating every text
        text = text.translate(_TYPO)
    return text.casefold()


def word_matches(folded: str) -> list[str]:
    """The raw word matches of already-folded text, before ``words`` strips ``.,'``."""
    return _WORD.findall(folded)


def words(text: str) -> list[str]:
    """Words of ``text`` (numbers like 5-10 and 2,000 split into their digits groups)."""
    return [w.strip(".,'") for w in word_matches(fold(text)) if w.strip(".,'")]


def names(text: str) -> set[str]:
    """Capitalised words (not the first) and numbers, folded: the specifics a question names.

    >>> sorted(names("Where does Dr. Wangchuk work, since 2017?"))
    ['2017', 'dr', 'wangchuk']
    """
    out: set[str] = set()
    for i, token in enumerate(text.split()):
        w = token.strip("?.,;:!\"'“”’()")
        if w and (any(ch.isdigit() for ch in w) or (i and w[:1].isupper())):
            out.update(fold(x).removesuffix("'s") for x in words(w))
    return out


@functools.lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


# Identifiers of technical text: words joined by "-", "_" or "::" (--document-private-items,
# ffi_prep_cif, std::fmt) and attribute/call forms (#[doc(hidden)] -> doc(hidden)).
# Anchored at a word's start and possessive: the same matches as the plain alternation
# ``w(sep w)+|w\(w*\)``, without retrying from every letter of every word (4x faster).
_IDENTIFIER = re.compile(r"(?<![^\W_])[^\W_]++(?:(?:(?:-|_+|::)[^\W_]++)+|\([^\W_]*+\))")


def folded_identifiers(folded: str) -> list[str]:
    """``identifiers`` of already-folded text."""
    return [i for i in _IDENTIFIER.findall(folded) if not i.replace("-", "").isdigit()]


def identifiers(text: str) -> list[str]:
    """Whole identifiers in ``text``, case-folded (``--document-private-items`` ->
    ``document-private-items``)."""
    return folded_identifiers(fold(text))


def content_terms(text: str) -> list[str]:
    """Stemmed content words (stopwords dropped): the keyword-search vocabulary.

    Each identifier also counts as one whole term after its words, so a query naming
    ``--document-private-items`` or ``#[doc(hidden)]`` matches that exact identifier first.
    """
    folded = fold(text)
    toks = [w for m in word_matches(folded) if (w := m.strip(".,'")) and w not in STOPWORDS]
    return [str(t) for t in _stemmer().stemWords(toks)] + folded_identifiers(folded)


def quoted(text: str) -> str:
    """``text`` (a source's words) inside quotation marks, once: a sentence that opens or is
    a quotation already shows its own marks."""
    s = text.strip()
    return s if s.startswith(("“", '"')) else f"“{s}”"
