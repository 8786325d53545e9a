from __future__ import annotations

import pytest

from rag.errors import IndexNotFoundError
from rag.ingest import ingest
from rag.retrieval import CorpusRetriever, HybridRetriever, relevance
from rag.settings import Settings
from tests.fakes import HashingEmbedder
from tests.retrieval_contract import check_retrieval_contract


@pytest.fixture
def fake_retriever(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> HybridRetriever:
    ingest(tmp_settings, embedder=fake_embedder)
    return HybridRetriever(settings=tmp_settings, embedder=fake_embedder)


def test_contract_on_the_fake_stack(fake_retriever: HybridRetriever) -> None:
    check_retrieval_contract(fake_retriever)


def test_langchain_retriever_returns_whole_paragraphs(fake_retriever: HybridRetriever) -> None:
    docs = CorpusRetriever(retriever=fake_retriever, k=2).invoke("Kathmandu Policy Forum")
    assert len(docs) == 2
    assert docs[0].metadata["paragraph"] == 3 and docs[0].metadata["source"] == "bhutan-qatar.md"
    assert "Kathmandu Policy Forum" in docs[0].page_content


def test_relevance_is_the_best_similarity(fake_retriever: HybridRetriever) -> None:
    on_topic = relevance(fake_retriever.search("Kathmandu Policy Forum specialist"))
    off_topic = relevance(fake_retriever.search("zebra xylophone quantum"))
    assert on_topic > off_topic


def test_searching_an_empty_index_says_what_to_run(tmp_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("anything")
