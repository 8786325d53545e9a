"""Starter question files for any corpus, written by the model and kept only when they pass
checks that do not trust the model (every line marked ``generated: true`` for review).

* Answerable: for each sampled paragraph one short answer is picked from its text (a name or
  a number with its unit, chosen by seed) and the model writes the question it answers; a
  paragraph with neither gets a question and a short answer both written by the model. Kept
  when the answer occurs verbatim in the paragraph (case and spacing
  aside), is short (at most 12 words), is not already in the question, and retrieval of the
  question (the index of the corpus, top k) returns that paragraph. The evidence is the
  sentence holding the answer.
* Unanswerable: the model changes one name, place or year of the paragraph's answerable
  question to another (SQuAD 2.0's kind of near miss), or, with no such question, writes a
  question on the same topic about something the text does not mention. Kept when the
  question shares a content word with its paragraph (on topic) and names something (a
  capitalised word or a number) that occurs nowhere in the corpus, so the corpus cannot hold
  the answer.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.dataset import Question, write_questions
from rag.sentences import sentences

ANSWERABLE_PROMPT = """Read the paragraph and write one question that it answers, and the \
answer: a short phrase (at most 8 words) copied exactly from the paragraph.

Paragraph:
\"\"\"{paragraph}\"\"\"

Reply in exactly this format:
Question: <the question>
Answer: <the answer copied from the paragraph>"""

TARGETED_PROMPT = """Read the paragraph and write one question that the paragraph answers \
with exactly this answer: "{answer}". The question must not contain the answer.

Paragraph:
\"\"\"{paragraph}\"\"\"

Reply in exactly this format:
Question: <the question>"""

SWAP_PROMPT = """Change one name, place or year in this question to a different one, so that \
it asks about something else.

Question: {question}

Reply in exactly this format:
Question: <the changed question>"""

UNANSWERABLE_PROMPT = """Read the paragraph and write one question on the same topic that \
the paragraph does NOT answer, because it asks about a person, place, year or number that the \
paragraph does not mention.

Paragraph:
\"\"\"{paragraph}\"\"\"

Reply in exactly this format:
Question: <the question>"""

_QUESTION = re.compile(
    r"^\s*\**\s*question\s*\**\s*[:\-]\s*\**\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_ANSWER = re.compile(
    r"^\s*\**\s*answer\s*\**\s*[:\-]\s*\**\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_WORD = re.compile(r"[A-Za-z][\w'\-]*|\d[\d,.]*")
_STOP = frozenset(
    """a an the and or of in on at to for from with by is are was were be been what which who
    whom whose when where why how did does do has have had that this these those it its
    their they he she his her not no""".split()
)
MAX_ANSWER_WORDS = 12


@dataclass
class GenerateStats:
    """How many candidates the model wrote and kept, by kind ("answerable", "unanswerable"),
    and why the dropped ones were dropped."""

    paragraphs: int = 0
    written: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every one, for review

    def to_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}


def _norm(text: str) -> str:
    t = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    return " ".join(t.replace("\u201d", '"').split()).casefold()


def _clean_answer(text: str) -> str:
    return text.strip().strip("\"'“”‘’").rstrip(".").strip()


def parse_reply(text: str) -> tuple[str, str]:
    """(question, answer) from a model reply; empty strings where missing."""
    q = _QUESTION.search(text)
    a = _ANSWER.search(text)
    return (q.group(1).strip() if q else "", _clean_answer(a.group(1)) if a else "")


def answer_sentence(paragraph: str, answer: str) -> str:
    """The sentence of ``paragraph`` that holds ``answer`` (verbatim text of the paragraph)."""
    target = _norm(answer)
    for sentence in sentences(paragraph):
        s = sentence.strip()
        if s and target in _norm(s):
            return s
    return ""


def _names_and_numbers(text: str) -> list[str]:
    """Capitalised words that do not start a sentence, and numbers."""
    out = []
    words = _WORD.findall(text)
    for i, w in enumerate(words):
        if w[0].isdigit() or (i > 0 and w[0].isupper() and w.lower() not in _STOP):
            out.append(w.rstrip(".,"))
    return out


_TARGET = re.compile(
    r"(?<![\w.])(?:\d[\d,.]*(?:\s+(?:per\s?cent|percent|million|billion|thousand|[a-z]+))?"
    r"|[A-Z][\w'\-]+(?:\s+(?:of\s+|de\s+|al-)?[A-Z][\w'\-]+)*)"
)


_TITLES = frozenset("Dr Mr Mrs Ms Prof St".split())


def answer_targets(paragraph: str) -> list[str]:
    """Short answers a question can be written for: names (not a sentence's first word) and
    numbers with the word after them ("42,000 pounds", "1949"), each once, in text order."""
    out: list[str] = []
    for sentence in sentences(paragraph):
        first = _WORD.search(sentence)
        for t in _TARGET.finditer(sentence):
            text = t.group(0).rstrip(".,'")
            if text[0].isdigit() and " " in text and text.split()[-1] in _STOP:
                text = text.split()[0].rstrip(".,")  # "1987 by" -> "1987"
            starts = first is not None and t.start() == first.start() and not text[0].isdigit()
            head, _, rest = text.partition(" ")
            if starts and rest and head.lower() in _STOP:  # "The Lumen Institute ..."
                text, starts = rest, False
            if text in _TITLES:  # "Dr" of "Dr. Ana Ortiz": the name after it is a target
                continue
            if text and not starts and text.lower() not in _STOP and text not in out:
                out.append(text)
    return out


def _content(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 2}


Ask = Callable[[str], str]
Retrieve = Callable[[str], Sequence[tuple[str, int]]]


def check_answerable(
    question: str,
    answer: str,
    paragraph: str,
    found: Sequence[tuple[str, int]],
    where: tuple[str, int],
) -> str:
    """Why a written answerable question is dropped ('' = kept)."""
    if not question or not answer:
        return "unparseable reply"
    if len(answer.split()) > MAX_ANSWER_WORDS:
        return "answer too long"
    if _norm(answer) not in _norm(paragraph):
        return "answer not verbatim in the paragraph"
    if _norm(answer) in _norm(question):
        return "answer already in the question"
    sentence = answer_sentence(paragraph, answer)
    if not sentence:
        return "answer spans sentences"
    if not _content(question) & (_content(sentence) - _content(answer)):
        return "question shares no word with the answer's sentence"
    if where not in found:
        return "retrieval does not find the paragraph"
    return ""


def check_unanswerable(question: str, paragraph: str, corpus_text: str) -> str:
    """Why a written unanswerable question is dropped ('' = kept)."""
    if not question:
        return "unparseable reply"
    if not _content(question) & _content(paragraph):
        return "off topic (no word of the paragraph)"
    corpus = _norm(corpus_text)
    absent = [n for n in _names_and_numbers(question) if _norm(n) not in corpus]
    if not absent:
        return "names nothing the corpus lacks"
    return ""


def generate_questions(
    paragraphs: Sequence[Any],
    ask: Ask,
    retrieve: Retrieve,
    *,
    n_paragraphs: int = 12,
    n_unanswerable: int = 6,
    seed: int = 0,
    min_words: int = 25,
    on_progress: Callable[[], None] | None = None,
    sink: Callable[[list[Question], GenerateStats], None] | None = None,
) -> tuple[list[Question], GenerateStats]:
    """Questions for ``paragraphs`` (``rag.types.Paragraph``-like: source, number, text).

    ``ask(prompt) -> reply`` is the model; ``retrieve(question) -> [(source, paragraph)]`` the
    corpus retrieval. Paragraphs of at least ``min_words`` words are sampled with ``seed``.
    """
    rng = random.Random(seed)
    pool = [p for p in paragraphs if len(p.text.split()) >= min_words]
    picked = rng.sample(pool, min(n_paragraphs, len(pool)))
    corpus_text = "\n".join(p.text for p in paragraphs)
    stats = GenerateStats(paragraphs=len(picked))
    out: list[Question] = []
    seen: set[str] = set()

    def record(
        p: Any, kind: str, q: str, answer: str | None, why: str, make: Callable[[str], Question]
    ) -> None:
        """Log one candidate in ``stats``; keep it (``make(id)``) unless dropped."""
        if not why and _norm(q) in seen:
            why = "duplicate question"
        candidate = {"paragraph": f"{p.source} ¶{p.number}", "kind": kind, "question": q}
        if answer is not None:
            candidate["answer"] = answer
        stats.candidates.append({**candidate, "dropped": why})
        if why:
            stats.dropped[f"{kind}: {why}"] += 1
            return
        seen.add(_norm(q))
        stats.kept[kind] += 1
        out.append(make(f"gen-{len(out) + 1:03d}"))

    for i, p in enumerate(picked):
        targets = answer_targets(p.text)
        if targets:
            a = rng.choice(targets)
            q, _ = parse_reply(ask(TARGETED_PROMPT.format(paragraph=p.text, answer=a)))
        else:
            q, a = parse_reply(ask(ANSWERABLE_PROMPT.format(paragraph=p.text)))
        stats.written["answerable"] += 1
        why = check_answerable(q, a, p.text, retrieve(q) if q else [], (p.source, p.number))
        record(
            p,
            "answerable",
            q,
            a,
            why,
            lambda qid, q=q, a=a, p=p: Question(
                id=qid,
                question=q,
                answerable=True,
                answers=[a],
                evidence=[answer_sentence(p.text, a)],
                category="generated",
                generated=True,
            ),
        )
        if on_progress:
            on_progress()
        if i < n_unanswerable:
            prompt = (
                SWAP_PROMPT.format(question=q)
                if q
                else UNANSWERABLE_PROMPT.format(paragraph=p.text)
            )
            uq, _ = parse_reply(ask(prompt))
            stats.written["unanswerable"] += 1
            why = check_unanswerable(uq, p.text, corpus_text)
            record(
                p,
                "unanswerable",
                uq,
                None,
                why,
                lambda qid, uq=uq: Question(
                    id=qid,
                    question=uq,
                    answerable=False,
                    category="generated_unanswerable",
                    generated=True,
                ),
            )
            if on_progress:
                on_progress()
        if sink:
            sink(out, stats)
    return out, stats


def model_and_retrieval(settings: Any) -> tuple[Ask, Retrieve]:
    """The chain's model (deterministic decoding) and the corpus's hybrid retrieval."""
    from langchain_core.messages import HumanMessage

    from rag.llm import get_llm, llm_lock
    from rag.retrieval import retrieve

    llm = get_llm(settings)

    def ask(prompt: str) -> str:
        with llm_lock(settings):
            reply = llm.invoke([HumanMessage(prompt)], max_tokens=80)
        return str(getattr(reply, "content", reply))

    def find(question: str) -> list[tuple[str, int]]:
        try:
            return [(r.source, r.paragraph) for r in retrieve(question, settings=settings)]
        except ValueError:  # an over-long or empty question: not retrievable
            return []

    return ask, find


def write_generated(out_file: Path, questions: Sequence[Question], stats: GenerateStats) -> None:
    """The question file (JSONL) and its statistics beside it (``.stats.json``)."""
    write_questions(out_file, questions)
    out_file.with_suffix(".stats.json").write_text(
        json.dumps(stats.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
