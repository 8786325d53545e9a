"""``python -m rag.setup_models``: prepare every packaged model file once, offline."""

from __future__ import annotations

import sys
import time

from rag.errors import RagError
from rag.llm import packaged_model_path
from rag.settings import Settings
from rag.tokens import ensure_encoding


def main() -> int:
    settings = Settings()
    t0 = time.perf_counter()
    try:
        ensure_encoding(settings.chunking.encoding)
        from rag.embedding import ensure_onnx_model, resolve_model_path

        model_path = resolve_model_path(settings.embedding.model)
        if settings.embedding.backend != "torch":
            files = ensure_onnx_model(model_path, settings.model_cache_dir)
            print(f"==> ONNX embedding model ready: {files['fp32'].parent}")
        if settings.llm.backend == "llamacpp" and settings.llm.model_path is None:
            path = packaged_model_path(settings)
            print(f"==> LLM ready: {path} (sha256 verified)")
    except RagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(f"==> models ready ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
