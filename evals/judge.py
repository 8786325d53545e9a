"""Faithfulness judges of the evals: is a statement supported by the sentence it cites?

* ``DeterministicJudge`` (name ``deterministic``): written from the definition of a faithful
  statement and sharing no code with ``rag/``'s verifier. The cited quote must occur in the
  cited paragraph, and every number, name, negator and other content word of the statement
  must be in the quoted sentence (other content words may also come from the question, and
  names and numbers the question gives from the cited paragraph), with names and numbers in a
  compatible role (who did what to whom).
  It is strict: it says "supported" only when the sentence itself shows it, so a faithful
  paraphrase with new words is "unsupported" (its own precision and recall on the labelled
  faithfulness set: ``evals faithfulness --verifier evals-judge``).
* ``LLMJudge``: RAGAS-style yes/no per statement. ``kind`` says what it is: ``self_judge``
  when it is the model that wrote the answers (the embedded model; never counted as an
  independent judge), ``llm_judge`` for an external OpenAI-compatible endpoint.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


@runtime_checkable
class Judge(Protocol):
    """Decides whether one statement is supported by its cited paragraph."""

    name: str
    kind: str  # "deterministic", "self_judge" or "llm_judge"

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        """True/False, or None when the judge could not decide (error, unparseable reply)."""
        ...


# -- the deterministic judge --------------------------------------------------------------------

# Function words only. Negators, comparatives and words of quantity, order or time (more,
# less, before, after, until, since, up, down…) are deliberately NOT here: they change meaning.
_STOP = frozenset(
    """a an the and or but if then so as of in on at to for from with by into onto about
    against between through during over under per via within upon is are was were be been
    being am do does did doing done have has had having will would shall should can could may
    might must it its it's this that these those there here which who whom whose what when
    where why how i me my we us our you your he him his she her they them their ones
    also just very too such while whereas although though because according say says said
    s t""".split()
)
_NEGATORS = frozenset(
    "not no never none nobody nothing nowhere neither nor without cannot n't".split()
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70"})
_NUMBER_WORDS.update({"eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000"})
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th)$")
_TYPO = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)
# a word (letters, inner apostrophes/hyphens), a number (with , or . inside), or a sign we read
_TOKEN = re.compile(r"[A-Za-z\u00c0-\u024f][\w'\-]*|\d[\d,.]*\d|\d|%|°")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_TYPO)


class _Tok:
    """One token: its surface form, a comparable key, and what kind of word it is."""

    __slots__ = ("key", "kind", "pos", "cap")

    def __init__(self, key: str, kind: str, pos: int, cap: bool) -> None:
        self.key, self.kind, self.pos, self.cap = key, kind, pos, cap


def _tokens(text: str) -> list[_Tok]:
    """Tokens with kinds: ``num``, ``neg``, ``stop``, ``word`` (``cap`` marks a capitalised
    word: a name, or a sentence-initial word that must then be in the sentence too)."""
    raw = _TOKEN.findall(_plain(text))
    out: list[_Tok] = []
    stem = _stemmer().stemWord
    for i, w in enumerate(raw):
        low = w.lower()
        parts: list[str] = [low]
        if low.endswith("n't"):  # "don't" -> "do" + negation
            parts = [low[:-3] or "do", "n't"]
        elif low.endswith("'s") or low.endswith("s'"):  # possessive
            parts = [low[:-2] if low.endswith("'s") else low[:-1]]
        elif "'" in low:  # they're, we'll, I've
            parts = [low.split("'")[0]]
        for p in parts:
            cap = w[:1].isupper() and p == parts[0]
            if p in ("%",):
                out.append(_Tok("percent", "word", i, False))
            elif p == "°":
                out.append(_Tok("degre", "word", i, False))
            elif p[0].isdigit():
                m = _ORDINAL.match(p)
                key = m.group(1) if m else p.replace(",", "")
                if key.endswith(".0"):
                    key = key[:-2]
                out.append(_Tok(key, "num", i, False))
            elif p in _NUMBER_WORDS:
                out.append(_Tok(_NUMBER_WORDS[p], "num", i, False))
            elif p in _NEGATORS:
                out.append(_Tok(p, "neg", i, False))
            elif p in _STOP or len(p) == 1:
                out.append(_Tok(p, "stop", i, False))
            else:
                for piece in p.split("-"):
                    if len(piece) > 1:
                        out.append(_Tok(stem(piece.strip("'")), "word", i, cap))
    return out


_NEG_SCOPE = 6  # tokens after a negator that it governs
_ANSWER_PARTICLE = re.compile(r"^\s*(yes|no)\s*[,.;:!-]", re.IGNORECASE)
_MINUS = re.compile(r"(?<![\w])-(?=\d)")


def _normalise_signs(text: str) -> str:
    """'-18 °C' reads as 'minus 18 degrees celsius'."""
    text = _MINUS.sub("minus ", _plain(text))
    return re.sub(r"°\s*C\b", " degrees Celsius", text)


def check_statement(
    statement: str, sentence: str, question: str = "", context: str = ""
) -> list[str]:
    """Why ``statement`` is not supported by ``sentence`` (empty: it is).

    The rules, from the definition of a faithful statement:
    1. every number of the statement is in the sentence;
    2. every capitalised word (a name, wherever it stands) is in the sentence, and no name
       occurs more often in the statement than in the sentence ("India ... replace India");
       a name or number the question itself gives may be restated when the sentence's
       paragraph (``context``) holds it ("When was the Joint Communiqué between Bhutan and
       Qatar signed?" -> "... between Bhutan and Qatar was signed ...");
    3. every other content word is in the sentence or the question (stemmed);
    4. every negator of the statement is in the sentence, and a statement that repeats words
       the sentence negates repeats the negation;
    5. roles: names found in both keep their order, unless the voice changes (a "by" between
       them in one text and not in the other: "X built Y" / "Y was built by X"); a number
       written right before a word counts the same word in both ("240 passengers").
    A leading "Yes," or "No," (an answer to a yes/no question) is not part of the claim.
    """
    statement = _ANSWER_PARTICLE.sub("", statement)
    st = _tokens(_normalise_signs(statement))
    se = _tokens(_normalise_signs(sentence))
    qk = {t.key for t in _tokens(question)}
    sent_keys = Counter(t.key for t in se if t.kind in ("word", "num"))
    ctx_keys = {t.key for t in _tokens(_normalise_signs(context))} if context else set()
    given = qk & ctx_keys  # names/numbers the question brings and the paragraph holds
    problems: list[str] = []
    st_names = Counter(t.key for t in st if t.kind == "word" and t.cap)
    se_all = Counter(t.key for t in se if t.kind == "word")
    for t in st:
        if t.kind == "num" and t.key not in sent_keys and t.key not in given:
            problems.append(f"number {t.key!r} not in the sentence")
        elif t.kind == "word" and t.cap and t.key not in sent_keys and t.key not in given:
            problems.append(f"name {t.key!r} not in the sentence")
        elif t.kind == "word" and not t.cap and t.key not in sent_keys and t.key not in qk:
            problems.append(f"word {t.key!r} not in the sentence")
    for name, count in st_names.items():
        if se_all.get(name, 0) and count > se_all[name]:
            problems.append(f"name {name!r} repeated more than in the sentence")
    st_neg = sum(1 for t in st if t.kind == "neg")
    se_neg = sum(1 for t in se if t.kind == "neg")
    if st_neg > se_neg:
        problems.append("negation not in the sentence")
    if se_neg and not st_neg:
        st_words = {t.key for t in st if t.kind in ("word", "num")}
        for i, t in enumerate(se):
            if t.kind != "neg":
                continue
            scope = {u.key for u in se[i + 1 : i + 1 + _NEG_SCOPE] if u.kind in ("word", "num")}
            if scope & st_words:
                problems.append("drops the sentence's negation")
                break
    problems.extend(_order_problems(st, se))
    return list(dict.fromkeys(problems))


def _anchors(toks: list[_Tok]) -> list[tuple[str, int]]:
    """(key, index) of the first occurrence of each name."""
    seen: dict[str, int] = {}
    for i, t in enumerate(toks):
        if t.kind == "word" and t.cap and t.key not in seen:
            seen[t.key] = i
    return list(seen.items())


def _units(toks: list[_Tok]) -> dict[str, set[str]]:
    """Number -> the words written right after it ("240 passengers": {"passeng"})."""
    out: dict[str, set[str]] = {}
    for t, u in zip(toks, toks[1:], strict=False):
        if t.kind == "num" and u.kind == "word" and u.pos == t.pos + 1:
            out.setdefault(t.key, set()).add(u.key)
    return out


def _has_by(toks: list[_Tok], a: int, b: int) -> bool:
    lo, hi = sorted((a, b))
    return any(t.key == "by" for t in toks[lo + 1 : hi])


def _order_problems(st: list[_Tok], se: list[_Tok]) -> list[str]:
    st_units, se_units = _units(st), _units(se)
    for num, words in st_units.items():
        if num in se_units and not words & se_units[num]:
            return [f"number {num!r} counts something else in the sentence"]
    se_first: dict[str, int] = {}
    for i, t in enumerate(se):
        se_first.setdefault(t.key, i)
    shared = [(k, i) for k, i in _anchors(st) if k in se_first]
    for x in range(len(shared)):
        for y in range(x + 1, len(shared)):
            (ka, ia), (kb, ib) = shared[x], shared[y]
            if se_first[ka] < se_first[kb]:
                continue
            voice_flip = _has_by(st, ia, ib) != _has_by(se, se_first[ka], se_first[kb])
            if not voice_flip:
                return [f"{ka!r} and {kb!r} in the opposite order to the sentence"]
    return []


def _squash(text: str) -> str:
    return " ".join(_plain(text).split())


class DeterministicJudge:
    """The cited quote is in the cited paragraph, and the statement passes ``check_statement``
    against that quote."""

    name = "deterministic"
    kind = "deterministic"

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        q = _squash(quote)
        if not q or q not in _squash(paragraph):
            return False
        lead, rest = split_lead(statement)
        if lead and _squash(lead) not in q:
            return False  # the short answer must be words of the cited sentence
        quoted = _QUOTED.fullmatch(rest.strip())
        if quoted:  # shown as a quotation: it must be the source's words, verbatim
            return _squash(quoted.group(1)) in _squash(paragraph)
        return not check_statement(rest, quote, question, paragraph)


# A composed statement "<short answer> — <sentence>": the answer, then what supports it.
_LEAD = re.compile(r"^(.{1,200}?)\s+—\s+(.+)$", re.DOTALL)
_QUOTED = re.compile(r"[“\"](.+)[”\"]\s*\.?", re.DOTALL)


def split_lead(statement: str) -> tuple[str, str]:
    """("short answer", "sentence") of "short answer — sentence"; ("", statement) otherwise."""
    m = _LEAD.match(statement.strip())
    return (m.group(1).strip(), m.group(2).strip()) if m else ("", statement)


# -- LLM judges ---------------------------------------------------------------------------------

JUDGE_SYSTEM = """You check whether a statement is supported by a source paragraph.
Answer "yes" if everything the statement claims is stated in or directly implied by the \
paragraph, and "no" otherwise. Use only the paragraph, not outside knowledge. \
Reply with one word: yes or no."""

JUDGE_HUMAN = """Paragraph:
\"\"\"{paragraph}\"\"\"

Statement: {statement}

Is the statement supported by the paragraph? Reply yes or no."""

_YES = re.compile(r"^\W*(yes|supported|true)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|not supported|unsupported|false)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """'yes' -> True, 'no' -> False, anything else -> None."""
    t = text.strip()
    if _YES.match(t):
        return True
    if _NO.match(t):
        return False
    low = t.lower()
    has_yes, has_no = bool(re.search(r"\byes\b", low)), bool(re.search(r"\bno\b", low))
    if has_yes != has_no:
        return has_yes
    return None


class LLMJudge:
    """Asks a chat model (LangChain ``BaseChatModel``) for a yes/no verdict per statement.

    ``kind``: ``self_judge`` (the generator judging itself) or ``llm_judge`` (another model).
    The judge's name is ``<kind>:<model>``.
    """

    def __init__(
        self, llm: Any, model: str, kind: str, lock: Callable[[], Any] | None = None
    ) -> None:
        if kind not in ("self_judge", "llm_judge"):
            raise ValueError(f"unknown LLM judge kind {kind!r}")
        self.llm = llm
        self.kind = kind
        self.name = f"{kind}:{model}"
        self._lock = lock

    @classmethod
    def external(
        cls, base_url: str, model: str | None = None, api_key: str | None = None
    ) -> LLMJudge:
        """An OpenAI-compatible endpoint: ``llm_judge``."""
        from langchain_openai import ChatOpenAI

        llm = ChatOpenAI(  # type: ignore[call-arg]
            base_url=base_url,
            model=model or "local",
            api_key=api_key or "not-needed",  # type: ignore[arg-type]
            temperature=0,
            max_tokens=4,
            timeout=60,
            max_retries=1,
        )
        return cls(llm, f"{model or 'local'}@{base_url}", "llm_judge")

    @classmethod
    def self_judge(cls, settings: Any) -> LLMJudge:
        """The chain's own model (shared with it, serialised by its lock): ``self_judge``."""
        from rag.llm import get_llm, llm_lock

        s = settings.llm
        if s.backend == "openai":
            label = f"{s.model}@{s.base_url}"
        else:
            label = s.model_path.name if s.model_path else "qwen2.5-coder-1.5b-q4_k_m"
        return cls(get_llm(settings), label, "self_judge", lock=lambda: llm_lock(settings))

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(
                JUDGE_HUMAN.format(paragraph=paragraph.strip(), statement=statement.strip())
            ),
        ]
        try:
            if self._lock is not None:
                with self._lock():
                    reply = self.llm.invoke(messages, max_tokens=4)
            else:
                reply = self.llm.invoke(messages)
        except Exception as exc:  # counted as undecided (None) in the report, never as "yes"
            logger.warning("LLM judge failed: %s", exc)
            return None
        return parse_verdict(str(getattr(reply, "content", reply)))
