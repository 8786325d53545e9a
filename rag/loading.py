"""Read corpus files (.txt, .md, .html, .pdf) into ``SourceDocument`` blocks.

A file that cannot be read is skipped with one warning naming the file and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import CorpusError
from rag.types import Block, SourceDocument

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class UnreadableFileError(Exception):
    """Internal: why one file was skipped."""


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("binary file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not valid UTF-8 (byte {exc.start})") from exc
    return _normalise_newlines(text)


def _split_blank_lines(text: str, *, markdown: bool) -> list[Block]:
    """Blocks separated by blank lines; in Markdown, ``#`` lines are headings."""
    blocks: list[Block] = []
    pos = 0
    pieces: list[tuple[int, int]] = []
    for m in _BLANK_LINES.finditer(text):
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
            while line_start < e:
                nl = text.find("\n", line_start, e)
                line_end = e if nl == -1 else nl
                m = _MD_HEADING.match(text[line_start:line_end])
                if not m:
                    break
                title = m.group(2).strip()
                if title:  # "# " followed only by Unicode spaces is an empty heading: drop it
                    blocks.append(Block("heading", title, line_start, line_end))
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
    text = _decode(data)
    return text, _split_blank_lines(text, markdown=markdown)


_HTML_BLOCK_TAGS = ("p", "li", "blockquote", "pre", "td", "dd", "dt", "figcaption")
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def load_html(data: bytes) -> tuple[str, list[Block]]:
    from bs4 import BeautifulSoup

    text = _decode(data)
    soup = BeautifulSoup(text, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "head", "nav"]):
        tag.decompose()
    parts: list[tuple[str, str]] = []
    for el in soup.find_all([*_HTML_HEADINGS, *_HTML_BLOCK_TAGS]):
        # Skip containers whose text is also reported by a nested block element.
        if el.name in _HTML_BLOCK_TAGS and el.find(list(_HTML_BLOCK_TAGS)):
            continue
        if el.find_parent(list(_HTML_BLOCK_TAGS)) is not None and el.name in _HTML_BLOCK_TAGS:
            continue
        content = " ".join(el.get_text(" ", strip=True).split())
        if not content:
            continue
        parts.append(("heading" if el.name in _HTML_HEADINGS else "paragraph", content))
    if not parts:
        body = soup.get_text("\n")
        return load_text(body.encode("utf-8"))
    return _assemble(parts)


def _assemble(parts: list[tuple[str, str]]) -> tuple[str, list[Block]]:
    """Join extracted blocks into one text with offsets."""
    chunks: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for kind, content in parts:
        blocks.append(Block(kind, content, pos, pos + len(content)))  # type: ignore[arg-type]
        chunks.append(content)
        pos += len(content) + 2
    return "\n\n".join(chunks), blocks


_SENTENCE_END = re.compile(r"[.!?:\"”)]\s*$")


def load_pdf(data: bytes) -> tuple[str, list[Block]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFileError(f"corrupt PDF ({exc})") from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise UnreadableFileError(f"corrupt PDF ({type(exc).__name__}: {exc})") from exc
    parts: list[tuple[str, str]] = []
    for page in pages:
        page = _normalise_newlines(page)
        if _BLANK_LINES.search(page):
            paras = [p for p in _BLANK_LINES.split(page)]
        else:
            # PDF text rarely keeps blank lines: a line ending a sentence ends a paragraph.
            paras, current = [], []
            for line in page.split("\n"):
                current.append(line.strip())
                if _SENTENCE_END.search(line) and len(" ".join(current)) > 200:
                    paras.append(" ".join(current))
                    current = []
            if current:
                paras.append(" ".join(current))
        for p in paras:
            content = " ".join(p.split())
            if content:
                parts.append(("paragraph", content))
    if not parts:
        raise UnreadableFileError("PDF has no extractable text")
    return _assemble(parts)


_LOADERS: dict[str, Callable[[bytes], tuple[str, list[Block]]]] = {
    ".txt": lambda d: load_text(d, markdown=False),
    ".md": lambda d: load_text(d, markdown=True),
    ".markdown": lambda d: load_text(d, markdown=True),
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
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
    text, blocks = _LOADERS[suffix](data)
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
