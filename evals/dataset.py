"""The question file: JSONL, one question per line, validated with pydantic.

A malformed line is reported with its line number; every other line is still loaded.

Fields (see evals/README.md):
    id          unique string
    question    the user's question
    history     optional [{"role": "user"|"assistant", "content": str}, ...]
    answerable  true when the corpus holds the answer
    answers     acceptable answer strings (any one suffices; all when ``all_answers``)
    all_answers optional, true when every answer string must appear
    evidence    verbatim excerpts of the supporting paragraph(s)
    category    optional label used to group results
    generated   optional, true for a question written by ``evals generate`` (to review)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Message(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class Question(BaseModel):
    """One evaluation question."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    history: list[Message] = Field(default_factory=list)
    answerable: bool
    answers: list[str] = Field(default_factory=list)
    all_answers: bool = False
    evidence: list[str] = Field(default_factory=list)
    category: str = ""
    generated: bool = False

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question is blank")
        return v

    @field_validator("answers", "evidence")
    @classmethod
    def _no_blank_items(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("blank string in list")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.answerable and not self.answers:
            raise ValueError("an answerable question needs at least one entry in 'answers'")
        if self.answerable and not self.evidence:
            raise ValueError("an answerable question needs at least one entry in 'evidence'")
        if not self.answerable and (self.answers or self.evidence):
            raise ValueError("an unanswerable question must have empty 'answers' and 'evidence'")
        return self

    def history_dicts(self) -> list[dict[str, str]]:
        return [m.model_dump() for m in self.history]


@dataclass(frozen=True)
class LineError:
    """A line of the question file that could not be loaded."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(line)"
        parts.append(f"{loc}: {e.get('msg', '')}")
    return "; ".join(parts)


def parse_questions(lines: Iterable[str]) -> tuple[list[Question], list[LineError]]:
    """Questions from JSONL lines, and one ``LineError`` per malformed line (1-based numbers).

    Blank lines and lines starting with ``//`` are skipped. A duplicate id is an error on the
    later line; the earlier question is kept.
    """
    questions: list[Question] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("//"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(LineError(n, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(data, dict):
            errors.append(LineError(n, f"expected a JSON object, got {type(data).__name__}"))
            continue
        try:
            q = Question.model_validate(data)
        except ValidationError as exc:
            errors.append(LineError(n, _describe(exc)))
            continue
        if q.id in seen:
            errors.append(LineError(n, f"duplicate id {q.id!r} (first on line {seen[q.id]})"))
            continue
        seen[q.id] = n
        questions.append(q)
    return questions, errors


def load_questions(path: Path) -> tuple[list[Question], list[LineError]]:
    """Questions from a JSONL file, and the errors of its malformed lines."""
    with Path(path).open(encoding="utf-8") as f:
        return parse_questions(f)


def write_questions(path: Path, questions: Sequence[Question]) -> None:
    """Write questions as JSONL (defaults left out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.model_dump(exclude_defaults=True), ensure_ascii=False) + "\n")


def missing_evidence(
    questions: Sequence[Question], corpus_texts: Sequence[str]
) -> list[tuple[str, str]]:
    """(question id, evidence) pairs whose evidence occurs verbatim in none of the texts.

    Whitespace runs are treated as one space; nothing else is normalised.
    """
    norm = [" ".join(t.split()) for t in corpus_texts]
    out = []
    for q in questions:
        for ev in q.evidence:
            e = " ".join(ev.split())
            if not any(e in t for t in norm):
                out.append((q.id, ev))
    return out


def stratified_sample(questions: Sequence[Question], n: int, seed: int = 0) -> list[Question]:
    """``n`` questions spread over the categories (round robin over categories, each shuffled
    with ``seed``), in file order. All of them when ``n`` is not smaller."""
    import random

    if n >= len(questions):
        return list(questions)
    rng = random.Random(seed)
    groups: dict[str, list[Question]] = {}
    for q in questions:
        groups.setdefault(q.category, []).append(q)
    for g in groups.values():
        rng.shuffle(g)
    picked: set[str] = set()
    while len(picked) < n:
        for cat in sorted(groups):
            if groups[cat] and len(picked) < n:
                picked.add(groups[cat].pop().id)
    return [q for q in questions if q.id in picked]


def select_questions(
    questions: Sequence[Question], *, sample: int | None = None, limit: int | None = None
) -> list[Question]:
    """The questions a run covers: a stratified sample of ``sample`` (seed 0) when asked, then
    the first ``limit``."""
    picked = list(questions) if sample is None else stratified_sample(questions, sample, seed=0)
    return picked if limit is None else picked[:limit]
