"""The question file: validation per line, and the fixed suite's evidence is in the corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.corpus import assemble, eval_documents
from evals.dataset import (
    Question,
    load_questions,
    missing_evidence,
    parse_questions,
    write_questions,
)
from rag.loading import load_corpus
from tests.conftest import CORPUS, ROOT

QUESTIONS = ROOT / "evals" / "questions.jsonl"

GOOD = {
    "id": "q1",
    "question": "Where was it signed?",
    "answerable": True,
    "answers": ["New York"],
    "evidence": ["in New York"],
}


def _line(**over: object) -> str:
    d = dict(GOOD)
    d.update(over)
    return json.dumps(d)


def test_malformed_lines_are_reported_by_number_and_the_rest_kept() -> None:
    lines = [
        _line(id="a"),
        "{not json",
        "",
        _line(id="b", history=[{"role": "system", "content": "x"}]),
        _line(id="c", answerable=True, answers=[]),
        "[1, 2]",
        _line(id="d", answerable=False, answers=["x"]),
        _line(id="e", extra_field=1),
        _line(id="f", category="fact", history=[{"role": "user", "content": "hi"}]),
        _line(id="a"),
        _line(id="g", answerable=False, answers=[], evidence=[]),
    ]
    qs, errors = parse_questions(lines)
    assert [q.id for q in qs] == ["a", "f", "g"]
    assert [e.line for e in errors] == [2, 4, 5, 6, 7, 8, 10]
    msgs = {e.line: str(e) for e in errors}
    assert msgs[2].startswith("line 2: invalid JSON")
    assert "history.0.role" in msgs[4]
    assert "answers" in msgs[5]
    assert "JSON object" in msgs[6]
    assert "unanswerable" in msgs[7]
    assert "extra_field" in msgs[8]
    assert "duplicate id 'a'" in msgs[10] and "line 1" in msgs[10]
    assert qs[1].history_dicts() == [{"role": "user", "content": "hi"}]


def test_missing_required_fields_and_blank_question() -> None:
    qs, errors = parse_questions([json.dumps({"id": "x"}), _line(id="y", question="   ")])
    assert qs == []
    assert "question" in errors[0].message and "answerable" in errors[0].message
    assert "blank" in errors[1].message


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    q = Question(
        id="r", question="Q?", answerable=True, answers=["A"], evidence=["e"], all_answers=True
    )
    path = tmp_path / "q.jsonl"
    write_questions(path, [q])
    back, errors = load_questions(path)
    assert errors == [] and back == [q]


def test_missing_evidence_finds_strings_not_in_the_corpus() -> None:
    q = Question(
        id="m", question="Q?", answerable=True, answers=["A"], evidence=["in New  York", "in Paris"]
    )
    assert missing_evidence([q], ["It was signed in New York."]) == [("m", "in Paris")]


def test_fixed_suite_loads_without_errors() -> None:
    qs, errors = load_questions(QUESTIONS)
    assert errors == [], [str(e) for e in errors]
    assert len(qs) >= 40
    cats = Counter(q.category for q in qs)
    for cat in (
        "fact",
        "paraphrase",
        "multi_paragraph",
        "unanswerable",
        "outside_knowledge",
        "injection",
        "multi_turn",
    ):
        assert cats[cat] >= 3, cat
    assert any(q.history for q in qs)
    assert any(not q.answerable for q in qs) and any(q.answerable for q in qs)


@pytest.fixture(scope="module")
def eval_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus `evals run` indexes: corpus/ plus the documents of evals/docs."""
    return assemble(CORPUS, tmp_path_factory.mktemp("evalcorpus"), eval_documents())


def test_every_evidence_string_occurs_verbatim_in_the_corpus(eval_corpus: Path) -> None:
    qs, _ = load_questions(QUESTIONS)
    texts = [d.text for d in load_corpus(eval_corpus)]
    assert len(texts) == 3
    assert missing_evidence(qs, texts) == []


def _paragraphs(corpus: Path) -> list[tuple[str, int, str]]:
    from rag.paragraphs import split_paragraphs

    return [(p.source, p.number, p.text) for d in load_corpus(corpus) for p in split_paragraphs(d)]


def test_every_evidence_string_lies_inside_one_indexed_paragraph(eval_corpus: Path) -> None:
    """Evidence must not span two paragraphs, or no retrieved paragraph could contain it."""
    from evals.metrics import contains_evidence

    paras = [t for _s, _n, t in _paragraphs(eval_corpus)]
    qs, _ = load_questions(QUESTIONS)
    for q in qs:
        for ev in q.evidence:
            assert any(contains_evidence(p, [ev]) for p in paras), (q.id, ev)


def test_suite_covers_multi_paragraph_multi_turn_and_other_document_kinds(
    eval_corpus: Path,
) -> None:
    """>= 15 multi-paragraph questions whose evidence really lies in two or more paragraphs,
    >= 15 multi-turn questions, and questions answered from the HTML page and the PDF."""
    from evals.metrics import contains_evidence

    paras = _paragraphs(eval_corpus)
    qs, _ = load_questions(QUESTIONS)
    multi = [q for q in qs if q.category == "multi_paragraph"]
    assert len(multi) >= 15
    for q in multi:
        where = {
            next((s, n) for s, n, t in paras if contains_evidence(t, [ev])) for ev in q.evidence
        }
        assert q.all_answers and len(where) >= 2, q.id
    turns = [q for q in qs if q.category == "multi_turn"]
    assert len(turns) >= 15 and all(q.history for q in turns)
    sources = Counter(
        s for q in qs for ev in q.evidence for s, _n, t in paras if contains_evidence(t, [ev])
    )
    for doc in eval_documents():
        assert sources[doc.name] >= 8, doc.name
    assert {d.suffix for d in eval_documents()} == {".html", ".pdf"}
