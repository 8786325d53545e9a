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


def test_an_unloadable_embedding_model_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model sentence-transformers cannot load: a ModelNotAvailableError naming the model
    (the CLI prints it as one line), not a library traceback."""
    import sys
    import types

    from rag.embedding import SentenceTransformerEmbedder
    from rag.errors import ModelNotAvailableError
    from rag.settings import EmbeddingSettings

    def refuse(*_a: object, **_k: object) -> None:
        raise OSError("model.safetensors is truncated")

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = refuse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr("rag.embedding.resolve_model_path", lambda _m: "/packaged/minilm")
    emb = SentenceTransformerEmbedder(EmbeddingSettings(backend="torch"))
    with pytest.raises(ModelNotAvailableError, match="all-MiniLM-L6-v2.*truncated"):
        emb.embed_query("Bhutan")


def test_the_onnx_backend_refuses_a_model_it_would_pool_wrongly(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """ONNX embeddings re-implement mean pooling; a CLS-pooling model gets a clear error that
    names the torch fallback instead of silently different vectors."""
    import json

    from rag.embedding import OnnxEmbedder
    from rag.errors import ModelNotAvailableError
    from rag.settings import EmbeddingSettings

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    emb = OnnxEmbedder(EmbeddingSettings(model=str(tmp_path), backend="onnx"), cache_dir=tmp_path)
    with pytest.raises(ModelNotAvailableError, match="BACKEND=torch"):
        emb.embed_query("Bhutan")


def test_an_int8_index_is_told_apart_from_a_torch_one() -> None:
    """torch and ONNX fp32 make the same vectors and share an index; int8 vectors differ, so
    the store (built from settings alone, as the retriever and CLI do) expects its own name."""
    from rag.embedding import get_embedder
    from rag.settings import EmbeddingSettings
    from rag.store import ChromaStore

    names = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        s = Settings(embedding=EmbeddingSettings(backend=backend))
        names[backend] = ChromaStore(settings=s).embedding_model
        assert names[backend] == get_embedder(s).model_name  # nothing is loaded here
    assert names["torch"] == names["onnx"] != names["onnx-int8"]


def test_chunks_chroma_holds_beyond_the_published_index_take_no_places(
    fake_retriever: HybridRetriever, fake_embedder: HashingEmbedder
) -> None:
    # An ingest that stored vectors and then stopped (a full disk, a crash) before publishing
    # its chunk index: its vectors, nearer the query than anything published, are never shown
    # and leave the published paragraphs their places.
    from rag.types import Chunk

    query = "Kathmandu Policy Forum"
    before = [(p.source, p.paragraph, p.text) for p in fake_retriever.search(query, k=5)]
    settings = fake_retriever.settings
    strays = [
        Chunk(f"stray{i}", f"p{i}", "unpublished.md", i, "", query, 0, 1, query, 0, 0)
        for i in range(3 * settings.retrieval.candidates)
    ]
    fake_retriever.store.add(strays, fake_embedder.embed_documents([c.text for c in strays]))
    after = [(p.source, p.paragraph, p.text) for p in fake_retriever.search(query, k=5)]
    assert after == before
