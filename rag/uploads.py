"""Add files to the corpus folder and remove them, then bring the index in line with
``rag.ingest`` (the same incremental, crash-safe ingest under the writer lock).

A file is checked before anything changes: a supported type, within the size limit, readable
by the same loader ingest uses. Only then is it copied into the corpus folder, under a
sanitised name that cannot leave the folder, written to a hidden temporary name first and
renamed, so a crash never leaves half a document behind. An existing document is replaced only
when the caller says so.

Example:
    >>> report = add_documents([Path("/tmp/upload/report.pdf")], settings=Settings())
    >>> report.added, report.rejected
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.embedding import Embedder
from rag.errors import CorpusError
from rag.ingest import ProgressFn, ingest
from rag.loading import MAX_FILE_BYTES, SUPPORTED_SUFFIXES, UnreadableFileError, load_document
from rag.settings import Settings
from rag.types import IngestReport

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


@dataclass
class UploadReport:
    """What one ``add_documents`` / ``remove_document`` call did."""

    added: list[str] = field(default_factory=list)  # corpus names written (new or replaced)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    removed: list[str] = field(default_factory=list)
    ingest: IngestReport | None = None


def safe_name(name: str) -> str:
    """A file name that stays inside the corpus folder: the last path component only, no
    leading dots (hidden files are not indexed), characters outside letters, digits, space,
    ``.``, ``-`` and ``_`` replaced by ``_``, at most 120 characters, suffix in lower case.

    Raises ``CorpusError`` when nothing usable is left.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if ch.isprintable())
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip(" ._")
    suffix = _UNSAFE.sub("", suffix).lower()
    if not stem:
        raise CorpusError(f"the file name {name!r} has no usable characters")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(" ._")
    return f"{stem}.{suffix}" if suffix else stem


def _check(path: Path, name: str) -> str | None:
    """Why ``path`` (to be stored as ``name``) cannot be added, or None."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = " ".join(SUPPORTED_SUFFIXES)
        return f"unsupported file type {suffix or '(none)'!r} (supported: {kinds})"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read the upload ({exc.strerror or exc})"
    if size > MAX_FILE_BYTES:
        return f"too large ({size / 1e6:.1f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)"
    try:
        if path.suffix.lower() == suffix:
            load_document(path, name)
        else:
            _load_as(path, name, suffix)
    except UnreadableFileError as exc:
        return str(exc)
    return None


def _load_as(path: Path, name: str, suffix: str) -> None:
    """Load ``path`` with the loader for ``suffix`` (an upload's temp name may lack it)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / f"probe{suffix}"
        shutil.copyfile(path, probe)
        load_document(probe, name)


def add_documents(
    files: Sequence[Path | str | tuple[Path | str, str]],
    settings: Settings | None = None,
    *,
    replace: bool = False,
    progress: ProgressFn | None = None,
    on_checked: Callable[[str, str | None], None] | None = None,
    embedder: Embedder | None = None,
) -> UploadReport:
    """Check each file, copy the good ones into the corpus folder, then ingest.

    Args:
        files: paths, or (path, original file name) pairs when the path is a temporary copy.
        replace: overwrite a document of the same name (otherwise it is rejected).
        progress: called with (done, total) chunks embedded by the ingest.
        on_checked: called with (name, reason or None) as each file is checked.
        embedder: the embedder for the ingest (default: the configured one).

    A rejected file changes nothing; the others are still added. The ingest runs only when
    something was added.
    """
    settings = settings or Settings()
    corpus = Path(settings.corpus_dir)
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder {str(corpus)!r} does not exist")
    report = UploadReport()
    root = corpus.resolve()
    for item in files:
        path, original = (Path(item[0]), item[1]) if isinstance(item, tuple) else (Path(item), "")
        shown = original or path.name
        try:
            name = safe_name(shown)
        except CorpusError as exc:
            report.rejected.append((shown, str(exc)))
            continue
        target = (root / name).resolve()
        reason: str | None
        if target.parent != root:  # cannot happen after safe_name; checked anyway
            reason = "the name points outside the corpus folder"
        elif target.exists() and not replace:
            reason = f"{name} is already in the corpus (choose replace to overwrite it)"
        elif name in report.added:
            reason = f"{name} appears twice in this upload"
        else:
            reason = _check(path, name)
        if on_checked:
            on_checked(name, reason)
        if reason:
            report.rejected.append((shown, reason))
            continue
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=root)
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                shutil.copyfileobj(src, out)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            report.rejected.append((shown, f"cannot write it to the corpus folder ({exc})"))
            continue
        report.added.append(name)
        logger.info("added %s to %s", name, root)
    if report.added:
        report.ingest = ingest(settings, progress=progress, embedder=embedder)
    return report


def remove_document(
    source: str,
    settings: Settings | None = None,
    *,
    progress: ProgressFn | None = None,
    embedder: Embedder | None = None,
) -> UploadReport:
    """Delete one document (its corpus-relative name) from the corpus folder, then ingest so
    its paragraphs leave the index.

    Raises ``CorpusError`` for a name outside the corpus folder or not in it, and when it was
    the last document (the index needs at least one; the file is left in place).
    """
    settings = settings or Settings()
    root = Path(settings.corpus_dir).resolve()
    target = (root / source).resolve()
    if not target.is_relative_to(root) or target == root:
        raise CorpusError(f"{source!r} is not a document of the corpus folder")
    if not target.is_file():
        raise CorpusError(f"{source!r} is not in the corpus folder")
    others = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p != target
        and p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not others:
        raise CorpusError(f"{source} is the only document; add another before removing it")
    target.unlink()
    report = UploadReport(removed=[source])
    report.ingest = ingest(settings, progress=progress, embedder=embedder)
    return report
