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


def test_searching_an_empty_index_says_what_to_run(
    tmp_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        HybridRetriever(settings=tmp_settings, embedder=fake_embedder).search("anything")


def test_an_unloadable_embedding_backend_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """e.g. RAG_EMBEDDING__BACKEND=onnx without optimum: a ModelNotAvailableError naming the
    model and backend (the CLI prints it as one line), not a library traceback."""
    import sys
    import types

    from rag.embedding import SentenceTransformerEmbedder
    from rag.errors import ModelNotAvailableError
    from rag.settings import EmbeddingSettings

    def refuse(*_a: object, **_k: object) -> None:
        raise ImportError("Using the ONNX backend requires installing Optimum and ONNX Runtime")

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = refuse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr("rag.embedding.resolve_model_path", lambda _m: "/packaged/minilm")
    emb = SentenceTransformerEmbedder(EmbeddingSettings(backend="onnx"))
    with pytest.raises(ModelNotAvailableError, match="backend 'onnx'.*Optimum"):
        emb.embed_query("Bhutan")
