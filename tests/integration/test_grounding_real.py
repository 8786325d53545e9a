"""Grounding with the real embedder: a bare answer is located in the sentence that answers the
question, not in another sentence that merely names the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import get_embedder
from rag.grounding import candidate_sentences
from rag.settings import Settings
from rag.types import Passage

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def cosine(text: str, sentences: Sequence[str]) -> list[float]:
    embedder = get_embedder(Settings(models_dir=ROOT / "data" / "models"))
    v = np.asarray(embedder.embed_documents([text, *sentences]), dtype=float)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [float(v[0] @ x) for x in v[1:]]


@pytest.mark.parametrize(
    ("question", "answer", "wrong", "right"),
    [
        (
            "Which country supplies most of the island's electricity?",
            "Norway",
            "Norway beat the island's football team in the 1998 final.",
            "Most of the island's electricity comes from Norway through an undersea cable.",
        ),
        (
            "Who painted the chapel's ceiling?",
            "Anna Weber",
            "Anna Weber later moved to Vienna, where she taught drawing.",
            "The chapel's ceiling was painted by Anna Weber in 1911.",
        ),
    ],
)
def test_a_bare_answer_is_located_in_the_sentence_that_answers(
    question: str, answer: str, wrong: str, right: str
) -> None:
    passage = Passage("doc.md", 1, "", f"{wrong} {right}", 1.0)
    _, start, end = candidate_sentences(answer, [passage], question, similarity=cosine)[0]
    assert passage.text[start:end] == right
