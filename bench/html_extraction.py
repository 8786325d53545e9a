"""Which HTML main-content extractor keeps a page's content and drops its chrome.

Runs trafilatura, readability-lxml, jusText and the former BeautifulSoup loader (every block
element's text) on the saved real pages of ``tests/data/real_docs`` and compares each
extractor's blocks with the page's main content, given by the hand-picked CSS selector in
``tests/data/real_docs/pages.json``:

* chrome: output blocks whose first words are not in the main content (headings included: a
  page title that is not in the main content counts);
* recall: main-content blocks (p, li, pre, dt, dd, td, headings) whose first words are in
  the output;
* code: ``<pre>`` blocks of the main content that come out as a block of their own.

    python bench/html_extraction.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "data" / "real_docs"
BLOCKS = ["p", "li", "pre", "dt", "dd", "td", "h1", "h2", "h3", "h4", "h5", "h6"]


def norm(text: str) -> str:
    """Letters and digits only, case-folded: extractors differ in spacing around inline
    elements ("edition1" vs "edition 1"), which is not what is measured here."""
    return re.sub(r"[\W_]+", "", text.casefold())


def head(text: str, n: int = 6) -> str:
    return norm(" ".join(text.split()[:n]))


def gold(html: str, spec: dict) -> tuple[str, list[str], list[str]]:
    soup = BeautifulSoup(html, "lxml")
    mains = soup.select(spec["main"])
    for m in mains:
        for sel in spec.get("drop", []):
            for el in m.select(sel):
                el.decompose()
    text = norm(" ".join(m.get_text(" ") for m in mains))
    blocks, pres = [], []
    for m in mains:
        for el in m.find_all(BLOCKS):
            if el.find(BLOCKS) is not None and el.name not in ("pre",):
                continue
            t = el.get_text(" ", strip=True)
            if norm(t):
                blocks.append(t)
                if el.name == "pre":
                    pres.append(t)
    return text, blocks, pres


def by_trafilatura(html: str) -> list[str]:
    import trafilatura
    from lxml import etree

    xml = trafilatura.extract(
        html,
        output_format="xml",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
    )
    if not xml:
        return []
    root = etree.fromstring(xml.encode())
    out = []
    for el in root.iter("head", "p", "item", "code", "cell", "quote"):
        parent = el.getparent()
        if el.tag == "code" and parent is not None and parent.tag in ("p", "item", "head", "cell"):
            continue
        t = "".join(el.itertext())
        if norm(t):
            out.append(t)
    return out


def by_readability(html: str) -> list[str]:
    from readability import Document

    soup = BeautifulSoup(Document(html).summary(), "lxml")
    return [
        el.get_text(" ", strip=True)
        for el in soup.find_all(BLOCKS)
        if el.find(BLOCKS) is None and norm(el.get_text())
    ]


def by_justext(html: str) -> list[str]:
    import justext

    return [
        p.text
        for p in justext.justext(html.encode(), justext.get_stoplist("English"))
        if not p.is_boilerplate
    ]


def by_bs4_all(html: str) -> list[str]:
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "head", "nav"]):
        tag.decompose()
    tags = ["p", "li", "blockquote", "pre", "td", "dd", "dt", "figcaption"]
    out = []
    for el in soup.find_all([*tags, "h1", "h2", "h3", "h4", "h5", "h6"]):
        if el.name in tags and (el.find(tags) or el.find_parent(tags) is not None):
            continue
        t = " ".join(el.get_text(" ", strip=True).split())
        if t:
            out.append(t)
    return out


def by_groundedchat(html: str) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from rag.loaders.html import load_html

    _, blocks = load_html(html.encode())
    return [b.text for b in blocks]


EXTRACTORS = {
    "bs4 (all block text)": by_bs4_all,
    "readability-lxml": by_readability,
    "jusText": by_justext,
    "trafilatura": by_trafilatura,
    "rag.loaders.html (trafilatura + 3 pre-steps)": by_groundedchat,
}


def main() -> None:
    spec = json.loads((PAGES / "pages.json").read_text())["pages"]
    rows = []
    for name, fn in EXTRACTORS.items():
        tot = {"blocks": 0, "chrome": 0, "gold": 0, "found": 0, "pre": 0, "pre_own": 0, "s": 0.0}
        chrome_examples: list[str] = []
        for page, s in spec.items():
            html = (PAGES / "corpus" / page).read_text(encoding="utf-8")
            text, gblocks, pres = gold(html, s)
            t0 = time.perf_counter()
            try:
                out = fn(html)
            except Exception as exc:  # an extractor that fails is reported, not hidden
                print(f"{name} failed on {page}: {exc}")
                out = []
            tot["s"] += time.perf_counter() - t0
            joined = norm(" ".join(out))
            tot["blocks"] += len(out)
            for b in out:
                if head(b) not in text:
                    tot["chrome"] += 1
                    if len(chrome_examples) < 4:
                        chrome_examples.append(f"{page}: {b[:50]!r}")
            tot["gold"] += len(gblocks)
            tot["found"] += sum(1 for g in gblocks if head(g) in joined)
            heads = {norm(b) for b in out}
            tot["pre"] += len(pres)
            tot["pre_own"] += sum(1 for p in pres if norm(p) in heads)
        rows.append((name, tot, chrome_examples))
    print(f"{len(spec)} pages; main content from the selectors in pages.json\n")
    print("| extractor | blocks | chrome blocks | content recall | code blocks kept whole | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t, _ in rows:
        print(
            f"| {name} | {t['blocks']} | {t['chrome']} | {t['found']}/{t['gold']} "
            f"({t['found'] / max(t['gold'], 1):.0%}) | {t['pre_own']}/{t['pre']} | {t['s']:.2f} |"
        )
    print()
    for name, _, ex in rows:
        if ex:
            print(f"{name} chrome, e.g.: " + "; ".join(ex))


if __name__ == "__main__":
    main()
