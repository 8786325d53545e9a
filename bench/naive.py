"""The LangChain RAG tutorial's naive pipeline, as the baseline for bench/answers.py and
bench/quality.py.

Faithful to https://python.langchain.com/docs/tutorials/rag/ (part 1): load each document,
``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)``,
a Chroma vector store (``langchain-chroma``), ``similarity_search`` top 4 (the default k),
the "rlm/rag-prompt" text as one human message with the chunks joined by blank lines, and the
model's output shown as is. Differences, to make the comparison about the pipeline only: the
documents are read from the corpus folder instead of a web page, and it uses this project's
embedder (``rag.embedding.get_embedder``) and chat model (``rag.llm.get_llm``), so both systems
share the same MiniLM and the same Qwen2.5-Coder-1.5B at temperature 0.

There are no citations in the tutorial. For the citation metrics, the 4 retrieved chunks (what
a UI would list as "sources") stand in as its citations: ``sources()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The prompt of the tutorial's hub prompt "rlm/rag-prompt", verbatim.
RAG_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't "
    "know. Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \n"
    "Context: {context} \n"
    "Answer:"
)

DONT_KNOW = (
    "don't know",
    "do not know",
    "not know",
    "does not say",
    "doesn't say",
    "not mentioned",
    "not provided",
    "no information",
    "does not provide",
    "doesn't provide",
    "not specified",
    "cannot be determined",
    "not stated",
    "does not mention",
    "doesn't mention",
    "unknown",
    "not available",
    "no mention",
    "isn't mentioned",
    "is not mentioned",
)


def says_dont_know(text: str) -> bool:
    """Whether a free-text answer is an abstention (the tutorial has no structured signal)."""
    t = text.lower().replace("’", "'")
    return any(p in t for p in DONT_KNOW)


@dataclass
class NaiveResult:
    question: str
    answer: str
    docs: list[Any]
    timings: dict[str, float | None] = field(default_factory=dict)
    n_tokens: int = 0


class NaiveRAG:
    """Example:
    >>> naive = NaiveRAG(settings, persist_directory=tmp / "naive-db")
    >>> naive.index()
    >>> naive.invoke("Which institution is Dr. Tenzin Wangchuk affiliated with?").answer
    """

    def __init__(self, settings: Any, persist_directory: Path, collection: str = "naive") -> None:
        from langchain_chroma import Chroma

        from rag.embedding import get_embedder

        self.settings = settings
        self.embeddings = get_embedder(settings)
        import chromadb
        from chromadb.config import Settings as ChromaConfig

        client = chromadb.PersistentClient(
            path=str(persist_directory), settings=ChromaConfig(anonymized_telemetry=False)
        )
        self.vector_store = Chroma(
            collection_name=collection, embedding_function=self.embeddings, client=client
        )
        self._llm: Any = None

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from rag.llm import get_llm

            self._llm = get_llm(self.settings)
        return self._llm

    def load(self) -> list[Any]:
        from langchain_core.documents import Document

        docs = []
        for p in sorted(Path(self.settings.corpus_dir).rglob("*")):
            if p.is_file() and p.suffix.lower() in {".md", ".txt"}:
                rel = p.relative_to(self.settings.corpus_dir).as_posix()
                docs.append(
                    Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": rel})
                )
        return docs

    def index(self) -> int:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=1000, chunk_overlap=200, add_start_index=True
        )
        splits = splitter.split_documents(self.load())
        self.vector_store.add_documents(documents=splits)
        return len(splits)

    def retrieve(self, question: str) -> list[Any]:
        return self.vector_store.similarity_search(question)  # k=4, the default

    def messages(self, question: str, docs: list[Any]) -> list[Any]:
        from langchain_core.messages import HumanMessage

        context = "\n\n".join(doc.page_content for doc in docs)
        return [HumanMessage(RAG_PROMPT.format(question=question, context=context))]

    def stream(self, question: str) -> Iterator[tuple[str, Any]]:
        """("token", text) for each streamed token, then ("final", NaiveResult)."""
        t0 = time.perf_counter()
        docs = self.retrieve(question)
        t_ret = time.perf_counter() - t0
        first = None
        parts: list[str] = []
        for chunk in self.llm.stream(self.messages(question, docs)):
            text = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
            if not text:
                continue
            if first is None:
                first = time.perf_counter() - t0
            parts.append(text)
            yield "token", text
        total = time.perf_counter() - t0
        yield (
            "final",
            NaiveResult(
                question,
                "".join(parts).strip(),
                docs,
                {"retrieval": t_ret, "first_token": first, "total": total},
                len(parts),
            ),
        )

    def invoke(self, question: str) -> NaiveResult:
        for kind, value in self.stream(question):
            if kind == "final":
                return value
        raise AssertionError("unreachable")

    def sources(self, result: NaiveResult) -> list[dict[str, Any]]:
        """The retrieved chunks as pseudo-citations (source, chunk text, start offset)."""
        return [
            {
                "marker": i + 1,
                "source": d.metadata.get("source", ""),
                "paragraph": d.metadata.get("start_index", -1),
                "text": d.page_content,
                "quote": "",
            }
            for i, d in enumerate(result.docs)
        ]
