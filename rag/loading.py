"""Read corpus files (.txt, .md, .html, .pdf, .docx) into ``SourceDocument`` blocks.

A file that cannot be read is skipped with one warning naming the file and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import CorpusError
from rag.loaders.common import UnreadableFileError, decode
from rag.types import Block, SourceDocument

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
MAX_FILE_BYTES = 20 * 1024 * 1024

__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "UnreadableFileError",
    "iter_corpus_files",
    "load_corpus",
    "load_document",
    "load_html",
    "load_pdf",
    "load_text",
]

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MD_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?^[ \t]{0,3}\1[ \t]*$", re.M | re.S)


def _split_blank_lines(text: str, *, markdown: bool) -> list[Block]:
    """Blocks separated by blank lines; in Markdown, ``#`` lines are headings and a fenced
    code block is one block even when it holds blank lines."""
    fences = [(m.start(), m.end()) for m in _MD_FENCE.finditer(text)] if markdown else []

    def in_fence(i: int) -> bool:
        return any(a <= i < b for a, b in fences)

    blocks: list[Block] = []
    pos = 0
    pieces: list[tuple[int, int]] = []
    for m in _BLANK_LINES.finditer(text):
        if in_fence(m.start()):
            continue
        pieces.append((pos, m.start()))
        pos = m.end()
    pieces.append((pos, len(text)))
    for start, end in pieces:
        raw = text[start:end]
        if not raw.strip():
            continue
        lead = len(raw) - len(raw.lstrip())
        s, e = start + lead, start + len(raw.rstrip())
        if markdown:
            # A heading line may sit directly above its paragraph without a blank line.
            line_start = s
            while line_start < e and not in_fence(line_start):
                nl = text.find("\n", line_start, e)
                line_end = e if nl == -1 else nl
                hm = _MD_HEADING.match(text[line_start:line_end])
                if not hm:
                    break
                title = hm.group(2).strip()
                if title:  # "# " followed only by Unicode spaces is an empty heading: drop it
                    blocks.append(Block("heading", title, line_start, line_end, len(hm.group(1))))
                line_start = line_end + 1
            if line_start >= e:
                continue
            s = line_start
            while text[s].isspace():  # an indented line under a heading: offsets start at text
                s += 1
        body = text[s:e]
        if body.strip():
            blocks.append(Block("paragraph", body, s, e))
    return blocks


def load_text(data: bytes, *, markdown: bool = False) -> tuple[str, list[Block]]:
    text = decode(data)
    return text, _split_blank_lines(text, markdown=markdown)


def load_html(data: bytes) -> tuple[str, list[Block]]:
    """The page's main content (see ``rag.loaders.html``)."""
    from rag.loaders.html import load_html as _load

    return _load(data)


def load_pdf(data: bytes) -> tuple[str, list[Block]]:
    """Paragraphs with their pages (see ``rag.loaders.pdf``)."""
    from rag.loaders.pdf import load_pdf as _load

    return _load(data)


def load_docx(data: bytes) -> tuple[str, list[Block]]:
    """A Word file's headings, paragraphs, lists and tables (see ``rag.loaders.docx``)."""
    from rag.loaders.docx import load_docx as _load

    return _load(data)


_LOADERS: dict[str, Callable[[bytes], tuple[str, list[Block]]]] = {
    ".txt": lambda d: load_text(d, markdown=False),
    ".md": lambda d: load_text(d, markdown=True),
    ".markdown": lambda d: load_text(d, markdown=True),
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def load_document(path: Path, source: str) -> SourceDocument:
    """Read one file. Raises ``UnreadableFileError`` with a short reason."""
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise UnreadableFileError(f"unsupported file type {suffix!r}")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableFileError(
                f"too large ({size / 1e6:.0f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise UnreadableFileError("empty file")
    try:
        text, blocks = _LOADERS[suffix](data)
    except UnreadableFileError:
        raise
    except Exception as exc:  # a parser failing on odd input must skip the file, not the corpus
        logger.debug("loader failed on %s", source, exc_info=True)
        raise UnreadableFileError(f"could not be read ({type(exc).__name__}: {exc})") from exc
    blocks = [b for b in blocks if b.text.strip()]
    if not any(b.kind == "paragraph" for b in blocks):
        raise UnreadableFileError("no text paragraphs")
    return SourceDocument(source=source, text=text, blocks=tuple(blocks))


def iter_corpus_files(corpus_dir: Path) -> Iterator[tuple[Path, str]]:
    """Supported files under ``corpus_dir`` in a stable order, with their source names."""
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder {str(corpus_dir)!r} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path {str(corpus_dir)!r} is not a folder")
    try:
        paths = sorted(p for p in corpus_dir.rglob("*") if p.is_file())
    except OSError as exc:
        raise CorpusError(f"cannot list corpus folder {str(corpus_dir)!r}: {exc}") from exc
    for p in paths:
        rel = p.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        yield p, rel.as_posix()


def load_corpus(
    corpus_dir: Path, *, on_skip: Callable[[str, str], None] | None = None
) -> list[SourceDocument]:
    """Load every readable document; skipped files are reported through ``on_skip``.

    Example:
        >>> docs = load_corpus(Path("corpus"))
    """
    docs: list[SourceDocument] = []
    for path, source in iter_corpus_files(corpus_dir):
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            if on_skip:
                on_skip(source, f"unsupported file type {path.suffix.lower() or '(none)'!r}")
            continue
        try:
            docs.append(load_document(path, source))
        except UnreadableFileError as exc:
            logger.warning("skipped %s: %s", source, exc)
            if on_skip:
                on_skip(source, str(exc))
    return docs
