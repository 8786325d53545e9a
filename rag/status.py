"""What is indexed, with which model, and whether the corpus changed since."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rag.chunk_store import CURRENT, chunk_store_dir, current, read_manifest
from rag.embedding import index_model_name
from rag.errors import IndexFormatError
from rag.settings import Settings
from rag.store import SCHEMA, ChromaStore, chroma_errors, vectors_missing_error


@dataclass
class IndexStatus:
    """A summary of the index for ``rag status`` and the UI's corpus panel."""

    location: str
    collection: str
    exists: bool
    embedding_model: str | None = None
    configured_model: str = ""
    chunks: int = 0
    documents: dict[str, dict[str, int]] = field(default_factory=dict)
    #: False for an index written in an older layout (needs ``rag ingest --reset``)
    current_format: bool = True
    #: chunks in the published keyword (BM25) index; None when none was published
    keyword_chunks: int | None = None

    @property
    def model_mismatch(self) -> bool:
        return bool(self.embedding_model and self.embedding_model != self.configured_model)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_mismatch"] = self.model_mismatch
        return d


def index_status(settings: Settings | None = None) -> IndexStatus:
    """Describe the index without loading any model.

    Example:
        >>> st = index_status()
        >>> st.exists, st.chunks, list(st.documents)
    """
    from rag.ingest import busy_error  # the writer lock is ingest's

    settings = settings or Settings()
    store = ChromaStore(settings=settings)
    location = settings.chroma_server or str(settings.index_dir)
    status = IndexStatus(
        location=location,
        collection=store.name,
        exists=store.exists(),
        configured_model=index_model_name(settings.embedding),
    )
    root = chunk_store_dir(settings)
    published = (root / CURRENT).exists()
    if not status.exists or not published:
        # a first ingest still running: say so rather than "no index" or half a count
        if (busy := busy_error(settings)) is not None:
            raise busy
    if not status.exists:
        if published:
            raise vectors_missing_error(settings)
        return status
    try:
        current(root)  # reads and checks the published files: damaged ones raise here
    except IndexFormatError:
        pass  # reported below as ``current_format``
    with chroma_errors(settings):
        col = store.client.get_collection(store.name, embedding_function=None)
        status.embedding_model = (col.metadata or {}).get("embedding_model")
        status.current_format = (col.metadata or {}).get("schema") == SCHEMA
        manifest = read_manifest(root)
        status.keyword_chunks = None if manifest is None else int(manifest.get("count", 0))
        status.chunks = int(col.count())
        docs: dict[str, dict[str, int]] = {}
        paras: dict[str, set[int]] = {}
        total = status.chunks
        for offset in range(0, total, 5000):
            got = col.get(include=["metadatas"], limit=5000, offset=offset)
            for meta in got["metadatas"] or []:
                src = str((meta or {}).get("source", ""))
                docs.setdefault(src, {"paragraphs": 0, "chunks": 0})["chunks"] += 1
                paras.setdefault(src, set()).add(int((meta or {}).get("paragraph", 0)))
    for src, nums in paras.items():
        docs[src]["paragraphs"] = len(nums)
    status.documents = dict(sorted(docs.items()))
    return status
