import rag


def test_public_api_is_pinned() -> None:
    # fmt: off
    assert sorted(rag.__all__) == sorted(
        [
            "ABSTENTION_TEXT", "Answer", "AnswerChain", "AnswerEvent",
            "ChromaServerUnreachableError", "Citation", "CorpusError", "CorpusRetriever",
            "DiskFullError", "EmbeddingModelMismatchError",
            "HybridRetriever", "IndexBusyError", "IndexDamagedError", "IndexLocationError",
            "IndexNotFoundError", "IndexStatus", "IngestReport", "InvalidQueryError", "LLMError",
            "LLMTimeoutError", "ModelNotAvailableError", "Passage", "RagError", "Settings",
            "Timings", "ask", "ensure_index", "get_chain", "index_status", "ingest", "relevance",
            "retrieve", "stream_answer",
        ]
    )
    # fmt: on
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


def test_answer_has_one_serialisation_with_chosen_fields() -> None:
    from rag.types import ANSWER_FIELDS, Answer, Citation, Passage

    cite = Citation(1, "a.md", 2, "Intro", "Porto is the seat.", "Porto is the seat.", page=3)
    near = Passage("b.md", 4, "", "Other text.", 0.1, page=None)
    answer = Answer("It is in Porto. [1]", False, citations=(cite,), see_also=(near,))
    assert tuple(answer.to_dict()) == ANSWER_FIELDS
    picked = answer.to_dict(fields=("see_also", "answer"), citation_fields=("marker",))
    assert picked == {
        "see_also": [{"source": "b.md", "paragraph": 4, "page": None}],
        "answer": "It is in Porto. [1]",
    }
    assert answer.to_dict(fields=("citations",), citation_fields=("marker", "page")) == {
        "citations": [{"marker": 1, "page": 3}]
    }


def test_ingest_summary_names_totals_and_changes() -> None:
    from rag.types import IngestReport

    report = IngestReport(documents=2, paragraphs=9, chunks=11, chunks_added=3, seconds=1.25)
    report.skipped.append(("bad.pdf", "unreadable"))
    assert report.summary() == (
        "Indexed 2 documents, 9 paragraphs, 11 chunks in 1.2 s "
        "(+3 / −0 chunks; skipped 1 unreadable file(s))."
    )
    assert report.details()[2].startswith("chunks     added 3, removed 0")
