"""The corpus an evaluation runs on: the user's corpus folder plus the evaluation documents kept
under ``evals/docs/`` (an HTML page and a PDF, so the fixed suite is not one Markdown
article's), copied into one folder that the run indexes on its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent / "docs"
EVAL_DOC_SUFFIXES = (".html", ".pdf")


def eval_documents(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """The evaluation documents (the HTML and PDF files of ``evals/docs``; the PDF's source
    text and build script stay out)."""
    return sorted(p for p in docs_dir.iterdir() if p.suffix.lower() in EVAL_DOC_SUFFIXES)


def assemble(base: Path, dest: Path, extra: Sequence[Path] = ()) -> Path:
    """Make ``dest`` hold every file of ``base`` (same relative paths) plus ``extra`` files at
    its top level. Unchanged files are left alone (so an incremental ingest re-embeds
    nothing); files no longer wanted are removed. Returns ``dest``.

    Raises ``FileNotFoundError`` when ``base`` is not a folder and ``ValueError`` when an
    extra file's name collides with a corpus file.
    """
    base, dest = Path(base), Path(dest)
    if not base.is_dir():
        raise FileNotFoundError(f"no corpus folder at {base}")
    wanted: dict[Path, Path] = {}
    for src in sorted(base.rglob("*")):
        if src.is_file() and not any(part.startswith(".") for part in src.relative_to(base).parts):
            wanted[src.relative_to(base)] = src
    for src in extra:
        rel = Path(Path(src).name)
        if rel in wanted:
            raise ValueError(f"{rel} is both in the corpus and an evaluation document")
        wanted[rel] = Path(src)
    dest.mkdir(parents=True, exist_ok=True)
    for old in sorted(dest.rglob("*"), reverse=True):
        rel = old.relative_to(dest)
        if old.is_file() and rel not in wanted:
            old.unlink()
    for rel, src in wanted.items():
        target = dest / rel
        if target.is_file() and target.read_bytes() == src.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return dest
