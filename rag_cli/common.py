"""Plumbing shared by the ``rag`` and ``evals`` commands: consoles, settings from options,
expected errors as one line and a non-zero exit, quiet library logging."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from rag.errors import RagError
from rag.settings import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Libraries whose own log lines the shells replace with one line of their own.
QUIET_LOGGERS = (
    "chromadb",
    "httpx",
    "sentence_transformers",
    "transformers",
    "urllib3",
    "pypdf",  # warnings about damaged files; the shells print one line per skipped file
    "rag.loading",
)


def new_app(help: str) -> typer.Typer:
    """A Typer app as both commands configure it: help without arguments, no tracebacks."""
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``Error: message`` on stderr; return the exit to raise."""
    err.print(f"[bold red]Error:[/] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def errors(code: int = 1) -> Iterator[None]:
    """Expected errors (``RagError``, Ctrl-C) become one clean line and a non-zero exit."""
    try:
        yield
    except RagError as exc:
        raise fail(str(exc), code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def settings_from(corpus: Path | None, db: Path | None) -> Settings:
    """``Settings()`` (``RAG_*`` variables) with the --corpus/--db options applied."""
    try:
        return Settings().with_paths(corpus=corpus, db=db)
    except Exception as exc:  # pydantic ValidationError from a bad RAG_* variable
        first = str(exc).splitlines()
        raise RagError("bad configuration: " + " ".join(first[:3])) from exc


def quiet_libraries() -> None:
    """Warnings only, and no progress bars of their own, from the libraries the shells use."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers and huggingface_hub read this when they are imported; only the torch
    # backend imports them, so importing transformers here (~0.3 s each command) is not needed
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:  # imported before the variable was set
        try:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        except Exception:
            pass
    if "transformers" in sys.modules:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except Exception:
            pass
