"""SQuAD 2.0 -> a corpus folder and a question file in this project's format.

One article becomes one Markdown document (``# Title`` then its paragraphs separated by blank
lines), so SQuAD paragraph i of an article is paragraph i of the document. Questions are
sampled per article with a fixed seed: half answerable, half unanswerable (answerable first
when the number is odd). The evidence of an answerable question is its gold paragraph's text,
so a cited or retrieved paragraph counts as correct only when it is the gold paragraph.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.dataset import Question, write_questions

DEFAULT_ARTICLES = (
    "Southern_California",
    "Victoria_(Australia)",
    "Huguenot",
    "Steam_engine",
    "1973_oil_crisis",
    "Black_Death",
    "Geology",
    "Pharmacy",
    "Private_school",
)


def default_squad_path() -> Path:
    """../shared/data/squad-v2-dev/dev-v2.0.json relative to the repository."""
    return (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "squad-v2-dev" / "dev-v2.0.json"
    )


def doc_name(title: str) -> str:
    """A safe file name for a title: ``Victoria_(Australia)`` -> ``Victoria_Australia.md``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_") or "article"
    return f"{stem}.md"


def clean_paragraph(text: str) -> str:
    """One line of text (a SQuAD context never needs its internal line breaks)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class GoldQuestion:
    """A SQuAD question with where its gold paragraph is in the generated corpus."""

    question: Question
    source: str
    paragraph: int  # 1-based, as rag numbers paragraphs


def load_squad(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def select_articles(data: dict[str, Any], articles: Sequence[str] | None) -> list[dict[str, Any]]:
    """The named articles in the order given (all when None); unknown names raise ValueError."""
    by_title = {a["title"]: a for a in data.get("data", [])}
    if not articles:
        return list(by_title.values())
    missing = [a for a in articles if a not in by_title]
    if missing:
        raise ValueError(f"not in the SQuAD file: {', '.join(missing)}")
    return [by_title[a] for a in articles]


def write_corpus(
    articles: Sequence[dict[str, Any]], corpus_dir: Path, *, heading: bool = True
) -> None:
    """One Markdown document per article (unchanged documents are left alone, so a re-run
    re-embeds nothing; other .md files in the folder, from an earlier selection, are removed).

    ``heading=False`` leaves out the ``# Title`` line (the paragraphs then have no section)."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    keep = {doc_name(a["title"]) for a in articles}
    for old in corpus_dir.glob("*.md"):
        if old.name not in keep:
            old.unlink()
    for art in articles:
        title = art["title"].replace("_", " ")
        body = "\n\n".join(clean_paragraph(p["context"]) for p in art["paragraphs"])
        text = f"# {title}\n\n{body}\n" if heading else f"{body}\n"
        path = corpus_dir / doc_name(art["title"])
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def all_questions(articles: Sequence[dict[str, Any]]) -> list[GoldQuestion]:
    """Every question of the articles, converted (answers de-duplicated, order kept)."""
    out: list[GoldQuestion] = []
    for art in articles:
        source = doc_name(art["title"])
        for pi, para in enumerate(art["paragraphs"], start=1):
            ctx = clean_paragraph(para["context"])
            for qa in para["qas"]:
                impossible = bool(qa.get("is_impossible"))
                answers: list[str] = []
                for a in qa.get("answers", []):
                    t = " ".join(str(a.get("text", "")).split())
                    if t and t not in answers:
                        answers.append(t)
                answerable = not impossible and bool(answers)
                kind = "answerable" if answerable else "unanswerable"
                q = Question(
                    id=str(qa["id"]),
                    question=" ".join(qa["question"].split()) or "?",
                    answerable=answerable,
                    answers=answers if answerable else [],
                    evidence=[ctx] if answerable else [],
                    category=f"squad:{art['title']}:{kind}",
                )
                out.append(GoldQuestion(q, source, pi))
    return out


def sample_questions(
    articles: Sequence[dict[str, Any]], per_article: int, seed: int = 0
) -> list[GoldQuestion]:
    """``per_article`` questions per article, ceil(n/2) answerable and floor(n/2) unanswerable,
    drawn with ``random.Random(seed)`` (same arguments, same sample)."""
    rng = random.Random(seed)
    out: list[GoldQuestion] = []
    every = all_questions(articles)
    for art in articles:
        source = doc_name(art["title"])
        mine = [g for g in every if g.source == source]
        ans = [g for g in mine if g.question.answerable]
        unans = [g for g in mine if not g.question.answerable]
        n_ans = min(len(ans), (per_article + 1) // 2)
        n_unans = min(len(unans), per_article - n_ans)
        picked = rng.sample(ans, n_ans) + rng.sample(unans, n_unans)
        out.extend(picked)
    return out


def convert(
    squad_path: Path,
    out_dir: Path,
    *,
    articles: Sequence[str] | None = DEFAULT_ARTICLES,
    per_article: int = 6,
    seed: int = 0,
) -> tuple[Path, Path, list[GoldQuestion]]:
    """Write ``out_dir/corpus/*.md`` and ``out_dir/questions.jsonl``.

    Returns (corpus folder, question file, the sampled questions).
    """
    data = load_squad(squad_path)
    arts = select_articles(data, articles)
    corpus = out_dir / "corpus"
    write_corpus(arts, corpus)
    sample = sample_questions(arts, per_article, seed)
    qpath = out_dir / "questions.jsonl"
    write_questions(qpath, [g.question for g in sample])
    return corpus, qpath, sample
