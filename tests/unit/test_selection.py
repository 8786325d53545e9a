"""What the model reads: the sentences most likely to answer, under a token budget."""

from __future__ import annotations

import json
import re

from rag.embedding import Remembering
from rag.selection import FEATURES, SELECTOR_FILE, Excerpt, Selector, load_selector, select
from rag.types import Passage
from tests.fakes import HashingEmbedder


def words(text: str) -> int:
    return len(text.split())


def passage(n: int, text: str, similarity: float = 0.5) -> Passage:
    return Passage("doc.md", n, "", text, 1.0, similarity=similarity)


FERRY = passage(
    1,
    "The harbour opened in 1902. Fishing boats moored there for decades. "
    "The Kestrel Bay ferry project cost 38 million euros. It was finished in 2019. "
    "Tourists now outnumber fishermen.",
)
OTHER = passage(
    2,
    "The town council meets on Tuesdays. Its chair is Mara Lind. Parking is free on Sundays.",
    0.3,
)


def _select(question: str, passages: list[Passage], *, budget: int) -> list[Excerpt]:
    return select(question, passages, embedder=HashingEmbedder(), count_tokens=words, budget=budget)


def test_the_sentence_that_answers_is_read_and_the_budget_holds() -> None:
    excerpts = _select(
        "How much did the Kestrel Bay ferry project cost?", [FERRY, OTHER], budget=12
    )
    read = " ".join(e.text for e in excerpts)
    assert "cost 38 million euros" in read
    assert sum(words(s) for s in re.split(r"(?<=\.) ", read.replace("… ", ""))) <= 12
    assert "Parking" not in read  # an unrelated sentence does not fit the budget


def test_a_pronoun_sentence_comes_with_the_sentence_before_it() -> None:
    excerpts = _select("When was it finished in 2019?", [FERRY], budget=20)
    text = excerpts[0].text
    assert "It was finished in 2019." in text
    assert "The Kestrel Bay ferry project cost 38 million euros. It was finished" in text


def test_excerpts_keep_document_order_and_mark_what_was_left_out() -> None:
    excerpts = _select(
        "Who chairs the town council, and when does it meet?", [OTHER, FERRY], budget=14
    )
    first = excerpts[0]
    assert first.passage is OTHER
    assert first.text.startswith("The town council meets on Tuesdays. Its chair is Mara Lind.")
    assert first.text.endswith("…")  # the parking sentence was left out
    assert all(e.passage in (OTHER, FERRY) for e in excerpts)


def test_each_part_of_a_two_part_question_ranks_the_sentences_read_for_itself() -> None:
    """A sentence read for one part is scored for every part: by the second part's scores a
    sentence of the council's paragraph ranks first (the checker picks by them)."""
    excerpts = _select(
        "How much did the Kestrel Bay ferry project cost, and who chairs the town council?",
        [FERRY, OTHER],
        budget=40,
    )
    read = [
        (e.passage.text[s:end], scores)
        for e in excerpts
        for (s, end, _), scores in zip(e.ranked, e.part_scores, strict=True)
    ]
    assert all(len(scores) == 2 for _, scores in read)
    by_part = [max(read, key=lambda r, k=k: r[1][k])[0] for k in (0, 1)]
    assert "cost 38 million euros" in by_part[0] and by_part[1] in OTHER.text
    one = _select("How much did the Kestrel Bay ferry project cost?", [FERRY, OTHER], budget=40)
    assert all(e.part_scores == () for e in one)  # one part: the ranked score is its own


def test_the_best_sentence_is_read_even_when_it_alone_exceeds_the_budget() -> None:
    excerpts = _select("How much did the ferry project cost?", [FERRY], budget=1)
    only = "… The Kestrel Bay ferry project cost 38 million euros. …"
    assert [e.text for e in excerpts] == [only]


def test_the_shipped_selector_loads_and_names_the_command_that_rebuilds_it() -> None:
    data = json.loads(SELECTOR_FILE.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == FEATURES
    assert data["command"].startswith("bench/context_selection.py fit")
    sel = load_selector()
    assert isinstance(sel, Selector)
    better = dict.fromkeys(FEATURES, 1.0) | {"cosine": 0.8, "paragraph_similarity": 0.6}
    worse = dict.fromkeys(FEATURES, 0.0) | {"cosine": 0.1, "inv_rank": 0.2}
    assert sel.score(better) > sel.score(worse)
    # Out of fold, the fitted selector found the gold answer at least as often as cosine alone.
    for row in data["measured"]["budgets"]:
        assert row["recall_oof"] >= row["recall_cosine_only"]


class Counting(HashingEmbedder):
    """HashingEmbedder that records every text it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen += texts
        return super().embed_documents(texts)


def test_a_paragraph_read_before_is_not_embedded_again_and_reads_the_same() -> None:
    inner = Counting()
    remembering = Remembering(inner, size=6)

    def read(question: str, embedder: object) -> list[Excerpt]:
        return select(question, [FERRY], embedder=embedder, count_tokens=words, budget=12)

    first = read("How much did the ferry project cost?", remembering)
    assert len(inner.seen) == 5  # FERRY's five sentences, once
    again = read("When was the ferry project finished?", remembering)
    assert len(inner.seen) == 5  # nothing new to embed
    assert again == read("When was the ferry project finished?", HashingEmbedder())
    assert first == read("How much did the ferry project cost?", HashingEmbedder())
    # Past its size the oldest texts are forgotten and embedded again when needed.
    small = Remembering(inner, size=2)
    inner.seen.clear()
    read("How much did the ferry project cost?", small)
    read("How much did the ferry project cost?", small)
    assert len(inner.seen) >= 5 + 3  # two texts remembered at most
