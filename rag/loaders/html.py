"""HTML pages: the main content (trafilatura), without the page chrome, as heading, paragraph,
code, list and table blocks.

trafilatura finds the main content and drops menus, sidebars, footers and banners. Two
steps run before it, all about documentation pages:

* permalink anchors (an ``<a href="#…">`` whose text is only ``¶``, ``#``, ``§`` or a link
  symbol, as Sphinx, MkDocs and texinfo put after headings) are removed, so the pilcrow does
  not end up in every section title;
* the block holding a link marked ``rel="next"``, ``"prev"``, ``"up"``, ``"index"``… (HTML's
  link types for moving between the pages of a set: texinfo's "Next: … Up: …" line) is
  removed when links make up at least half of its words;
* ``<section>`` elements lose their ``id`` and ``class``: documentation generators derive them
  from the heading text, and trafilatura discards any element whose id or class contains
  words such as "menu" or "nav", which deleted whole sections titled "Menus" or "Editing and
  Navigation" from the Python IDLE manual. Layout chrome is marked on ``div``/``nav``/
  ``header``/``footer``/``aside``, which keep their attributes.

A page whose block text is shorter than trafilatura's own minimum (``MIN_EXTRACTED_SIZE``,
250 characters; below it trafilatura flattens the page into one paragraph), or where it finds
no main content, is read as every block element's text, scripts, styles, comments and
``<nav>`` removed: a page that small has no room for chrome.
"""

from __future__ import annotations

import re
from typing import Any

from rag.loaders.common import Part, UnreadableFileError, assemble, decode
from rag.types import Block

_PERMALINK = re.compile(r"^[\s¶#§🔗]*$")
_MIN_EXTRACTED_SIZE = 250  # trafilatura's default MIN_EXTRACTED_SIZE
# What trafilatura returns: the main content as XML with headings, lists, code and tables, and
# every paragraph it finds (recall first, no deduplication); comments and images left out.
_EXTRACT: dict[str, Any] = {
    "output_format": "xml",
    "include_formatting": True,
    "include_tables": True,
    "include_comments": False,
    "include_images": False,
    "favor_recall": True,
    "deduplicate": False,
}
_NAV_RELS = {"next", "prev", "previous", "up", "index", "contents", "start", "first", "last"}
_NAV_HOLDERS = ("p", "div", "li", "td", "header", "footer")
_BLOCK_TAGS = ("p", "li", "blockquote", "pre", "td", "dd", "dt", "figcaption")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _clean_tree(data: bytes):  # type: ignore[no-untyped-def]
    from lxml import html as lxml_html

    try:
        tree = lxml_html.document_fromstring(decode(data))
    except UnreadableFileError:
        raise
    except Exception as exc:  # lxml raises ParserError/ValueError on empty or odd input
        raise UnreadableFileError(f"not parseable as HTML ({exc})") from exc
    for a in tree.iter("a"):
        href = a.get("href") or ""
        if href.startswith("#") and _PERMALINK.match(a.text_content() or "") and len(a) == 0:
            a.drop_tree()
    for a in list(tree.iter("a")):
        if (a.get("rel") or "").lower() in _NAV_RELS:
            holder = next((b for b in a.iterancestors() if b.tag in _NAV_HOLDERS), None)
            if holder is None or holder.getparent() is None:
                continue
            words = len(holder.text_content().split())
            linked = sum(len(x.text_content().split()) for x in holder.iter("a"))
            if words and linked * 2 >= words:  # a line of links, not a container of content
                holder.drop_tree()
    for section in tree.iter("section"):
        section.attrib.pop("id", None)
        section.attrib.pop("class", None)
    return tree


def _text(el) -> str:  # type: ignore[no-untyped-def]
    return "".join(el.itertext())


def _parts_from_xml(xml: str) -> list[Part]:
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    if main is None:
        return []
    parts: list[Part] = []
    for el in main:
        tag = el.tag
        if tag == "head":
            text = _flat(_text(el))
            m = re.fullmatch(r"h([1-6])", el.get("rend", ""))
            if text:
                parts.append(Part("heading", text, int(m.group(1)) if m else 2))
        elif tag == "code":
            text = _text(el).strip("\n")
            if text.strip():
                parts.append(Part("paragraph", text))
        elif tag == "list":
            items = [_flat(_text(i)) for i in el.findall("item")]
            items = [i for i in items if i]
            if items:
                parts.append(Part("paragraph", "\n".join(items)))
        elif tag == "table":
            rows = []
            for row in el.iter("row"):
                cells = [_flat(_text(c)) for c in row.findall("cell")]
                if any(cells):
                    rows.append(" | ".join(cells))
            if rows:
                parts.append(Part("paragraph", "\n".join(rows)))
        else:  # p, quote, and anything else that holds text
            text = _flat(_text(el))
            if text:
                parts.append(Part("paragraph", text))
    return parts


def _parts_all_blocks(tree) -> list[Part]:  # type: ignore[no-untyped-def]
    for bad in tree.xpath("//script|//style|//noscript|//template|//head|//nav|//comment()"):
        bad.drop_tree()
    parts: list[Part] = []
    for el in tree.iter(*_HEADINGS, *_BLOCK_TAGS):
        if el.tag in _BLOCK_TAGS:
            # Skip containers whose text a nested block reports, and blocks inside a block.
            if any(d.tag in _BLOCK_TAGS for d in el.iterdescendants()):
                continue
            if any(a.tag in _BLOCK_TAGS for a in el.iterancestors()):
                continue
        text = _text(el).strip("\n") if el.tag == "pre" else _flat(_text(el))
        if not text.strip():
            continue
        if el.tag in _HEADINGS:
            parts.append(Part("heading", text, int(el.tag[1])))
        else:
            parts.append(Part("paragraph", text))
    return parts


def _fallback(data: bytes) -> tuple[str, list[Block]]:
    parts = _parts_all_blocks(_clean_tree(data))
    if not parts:
        raise UnreadableFileError("no text found in the HTML")
    return assemble(parts)


def load_html(data: bytes) -> tuple[str, list[Block]]:
    """The page's main content as blocks; the page's ``<title>`` heads it when the main
    content has no heading of its own."""
    import trafilatura

    tree = _clean_tree(data)
    title = _flat(tree.findtext(".//title") or "")
    body = tree.find("body")
    visible = body if body is not None else tree
    skip = {"script", "style", "noscript", "template"}
    n_chars = sum(
        len((el.text or "").strip() if el.tag not in skip else "") + len((el.tail or "").strip())
        for el in visible.iter()
        if isinstance(el.tag, str)
    )
    if n_chars < _MIN_EXTRACTED_SIZE:
        return _fallback(data)
    xml = trafilatura.extract(tree, **_EXTRACT)
    parts = _parts_from_xml(xml) if xml else []
    if not any(p.kind == "paragraph" for p in parts):
        return _fallback(data)
    if parts[0].kind != "heading" and title:
        parts.insert(0, Part("heading", title, 1))
    return assemble(parts)
