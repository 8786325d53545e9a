import rag


def test_public_api_is_pinned() -> None:
    assert sorted(rag.__all__) == sorted(
        [
            "ABSTENTION_TEXT", "Answer", "AnswerChain", "AnswerEvent", "Citation", "CorpusError",
            "CorpusRetriever", "EmbeddingModelMismatchError", "HybridRetriever", "IndexBusyError",
            "IndexNotFoundError", "IndexStatus", "IngestReport", "InvalidQueryError", "LLMError", "LLMTimeoutError",
            "ModelNotAvailableError", "Passage", "RagError", "Settings", "Timings", "ask",
            "ensure_index", "get_chain", "index_status", "ingest", "relevance", "retrieve",
            "stream_answer",
        ]
    )
    for name in rag.__all__:
        assert getattr(rag, name) is not None


def test_invalid_query_is_a_value_error() -> None:
    assert issubclass(rag.InvalidQueryError, ValueError)


def test_settings_read_rag_env(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RAG_CORPUS_DIR", "/tmp/c")
    monkeypatch.setenv("RAG_DB_DIR", "/tmp/d")
    monkeypatch.setenv("RAG_RETRIEVAL__K", "7")
    monkeypatch.setenv("RAG_CHROMA_URL", "http://127.0.0.1:9")
    s = rag.Settings()
    assert str(s.corpus_dir) == "/tmp/c" and str(s.index_dir) == "/tmp/d"
    assert s.retrieval.k == 7 and s.chroma_server == "http://127.0.0.1:9"
