"""HTML for the chat UI. Pure functions, no Gradio: easy to unit-test.

Everything that comes from documents, the model or the user is HTML-escaped here, so a
document containing ``<script>`` is displayed as text. The markup avoids blank lines so the
chatbot's Markdown renderer treats each message as one HTML block and leaves it alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from rag.text import quoted
from rag.types import ABSTENTION_TEXT, UNCONFIRMED_TEXT, Answer, Citation, Passage

_MARKER = re.compile(r"\[(\d+)\]")


def esc(text: object) -> str:
    """HTML-escape anything (quotes included)."""
    return html.escape(str(text), quote=True)


# -- quote highlighting ---------------------------------------------------------------------


def _norm_with_map(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with runs of whitespace collapsed, and a map back to original offsets."""
    out: list[str] = []
    idx: list[int] = []
    prev_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if prev_space:
                continue
            out.append(" ")
            idx.append(i)
            prev_space = True
        else:
            out.append(ch.lower())
            idx.append(i)
            prev_space = False
    return "".join(out), idx


def quote_span(text: str, quote: str, start: int = -1, end: int = -1) -> tuple[int, int] | None:
    """Where ``quote`` lies in ``text``: the chain's offsets when they are valid, else a search
    ignoring case and whitespace. ``None`` when it cannot be located."""
    if 0 <= start < end <= len(text):
        return start, end
    q = quote.strip().strip("“”\"'").strip()
    if not q:
        return None
    i = text.find(q)
    if i >= 0:
        return i, i + len(q)
    norm_text, mapping = _norm_with_map(text)
    norm_q, _ = _norm_with_map(q)
    j = norm_text.find(norm_q.strip())
    if j < 0:
        return None
    k = j + len(norm_q.strip()) - 1
    return mapping[j], mapping[k] + 1


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` escaped, with each span wrapped in ``<mark>`` (overlaps merged)."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        s, e = max(0, s), min(len(text), e)
        if s >= e:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    parts: list[str] = []
    pos = 0
    for s, e in merged:
        parts.append(esc(text[pos:s]))
        parts.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    parts.append(esc(text[pos:]))
    return "".join(parts)


# -- pieces ---------------------------------------------------------------------------------


def _location(source: str, paragraph: int, section: str, page: int | None = None) -> str:
    where = f" p.&nbsp;{int(page)}" if page is not None else ""
    loc = f'<span class="rag-doc">{esc(source)}</span>{where} ¶{int(paragraph)}'
    if section:
        loc += f' · <span class="rag-section">{esc(section)}</span>'
    return loc


def _anchor(uid: str, marker: int) -> str:
    return f"rag-src-{esc(uid)}-{int(marker)}"


def group_citations(citations: Sequence[Citation]) -> dict[int, list[Citation]]:
    """Citations by marker (one paragraph can back several statements)."""
    groups: dict[int, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.marker, []).append(c)
    return dict(sorted(groups.items()))


def render_citation(
    uid: str, marker: int, cites: Sequence[Citation], *, open_: bool = False
) -> str:
    """One source: a <details> whose summary names the document, ¶ and section, and whose body
    is the whole cited paragraph with the quoted span(s) highlighted."""
    first = cites[0]
    spans = [
        sp
        for c in cites
        if (sp := quote_span(c.text, c.quote, c.quote_start, c.quote_end)) is not None
    ]
    body = highlight(first.text, spans)
    quotes = "".join(
        f'<li class="rag-quote">{esc(quoted(c.quote))}</li>'
        for c in cites
        if quote_span(c.text, c.quote, c.quote_start, c.quote_end) is None
    )
    missing = f'<ul class="rag-quotes">{quotes}</ul>' if quotes else ""
    return (
        f'<details class="rag-citation" id="{_anchor(uid, marker)}"'
        f"{' open' if open_ else ''}>"
        f'<summary><span class="rag-marker">[{int(marker)}]</span> '
        f"{_location(first.source, first.paragraph, first.section, first.page)}</summary>"
        f'<blockquote class="rag-paragraph">{body}</blockquote>{missing}</details>'
    )


def render_passage(p: Passage) -> str:
    """A retrieved paragraph (for "see also"), collapsed."""
    return (
        '<details class="rag-passage">'
        f"<summary>{_location(p.source, p.paragraph, p.section, p.page)}</summary>"
        f'<blockquote class="rag-paragraph">{esc(p.text)}</blockquote></details>'
    )


def _answer_text(text: str, uid: str, markers: set[int]) -> str:
    """Escaped answer text with [n] markers turned into links to their source."""

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in markers:
            return m.group(0)
        return f'<a class="rag-cite" href="#{_anchor(uid, n)}" title="Show source {n}">[{n}]</a>'

    return _MARKER.sub(link, esc(text))


def _standalone(answer: Answer) -> str:
    sq, q = answer.standalone_question.strip(), answer.question.strip()
    if sq and q and sq != q:
        return f'<div class="rag-standalone">Searched for: “{esc(sq)}”</div>'
    return ""


def render_answer(answer: Answer, uid: str) -> str:
    """The answer, the unconfirmed evidence, or the abstention box, as one HTML block."""
    if answer.outcome == "unconfirmed" and answer.evidence:
        return render_unconfirmed(answer, uid)
    if answer.abstained or not answer.citations:
        return render_abstention(answer)
    groups = group_citations(answer.citations)
    text = _answer_text(answer.text, uid, set(groups))
    sources = "".join(render_citation(uid, m, cs) for m, cs in groups.items())
    return (
        f'<div class="rag-answer">{_standalone(answer)}'
        f'<div class="rag-text">{text}</div>'
        f'<div class="rag-sources"><div class="rag-sources-title">Sources</div>{sources}</div>'
        "</div>"
    )


def render_unconfirmed(answer: Answer, uid: str) -> str:
    """Evidence the documents may hold but do not confirm: a dashed box saying so, then the
    closest sentence, verbatim, with its paragraph (never styled as an answer)."""
    groups = group_citations(answer.evidence)
    sources = "".join(render_citation(uid, m, cs) for m, cs in groups.items())
    quote = _answer_text(answer.text.removeprefix(UNCONFIRMED_TEXT).strip(), uid, set(groups))
    return (
        f'<div class="rag-answer rag-abstained rag-unconfirmed">{_standalone(answer)}'
        f'<div class="rag-abstain-box" role="note">{esc(UNCONFIRMED_TEXT)}</div>'
        f'<div class="rag-text rag-evidence">{quote}</div>'
        f'<div class="rag-sources"><div class="rag-sources-title">Closest passage</div>'
        f"{sources}</div></div>"
    )


def render_abstention(answer: Answer) -> str:
    """The abstention: a distinct box, plus the nearest paragraphs when there are any."""
    see = ""
    if answer.see_also:
        see = (
            '<div class="rag-see-also"><div class="rag-sources-title">See also</div>'
            + "".join(render_passage(p) for p in answer.see_also)
            + "</div>"
        )
    return (
        f'<div class="rag-answer rag-abstained">{_standalone(answer)}'
        f'<div class="rag-abstain-box" role="note">{esc(ABSTENTION_TEXT)}</div>{see}</div>'
    )


def render_progress(status: str, detail: str = "") -> str:
    """A progress line shown while the answer is prepared (never the draft text)."""
    extra = f'<div class="rag-progress-detail">{esc(detail)}</div>' if detail else ""
    return (
        f'<div class="rag-progress" aria-live="polite"><span class="rag-spinner"></span>'
        f"{esc(status)}{extra}</div>"
    )


def render_error(message: str) -> str:
    """A library error as a chat message (no traceback)."""
    return f'<div class="rag-error" role="alert">⚠️ {esc(message)}</div>'


def render_notice(message: str) -> str:
    """A friendly notice (e.g. input too long)."""
    return f'<div class="rag-notice">{esc(message)}</div>'


def render_user(text: str) -> str:
    """The user's message, escaped (it is displayed, never interpreted)."""
    return f'<div class="rag-user">{esc(text)}</div>'


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def render_status(status: Any) -> str:
    """The corpus panel: index location, model, documents with paragraph counts."""
    if status is None:
        return '<div class="rag-status">Index status unavailable.</div>'
    if not status.exists:
        return (
            '<div class="rag-status"><b>No index yet.</b> '
            f"Press “Re-index” to index the corpus.<br><small>{esc(status.location)}</small></div>"
        )
    rows = "".join(
        f"<tr><td>{esc(src)}</td><td>{int(info.get('paragraphs', 0))}</td>"
        f"<td>{int(info.get('chunks', 0))}</td></tr>"
        for src, info in status.documents.items()
    )
    warn = ""
    if status.model_mismatch:
        warn = (
            '<div class="rag-error">The index was built with '
            f"{esc(status.embedding_model)}, settings ask for {esc(status.configured_model)}: "
            "rebuild it with <code>rag ingest --reset</code>.</div>"
        )
    return (
        '<div class="rag-status">'
        f"<div><b>{len(status.documents)}</b> {_plural(len(status.documents), 'document')}, "
        f"<b>{int(status.chunks)}</b> {_plural(int(status.chunks), 'chunk')} "
        f"· model <code>{esc(status.embedding_model or '?')}</code></div>{warn}"
        '<table class="rag-docs"><thead><tr><th>document</th><th>¶</th><th>chunks</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
        f"<small>{esc(status.location)}</small></div>"
    )


def render_upload(report: Any) -> str:
    """What an upload did: documents added and indexed, and one line per file not added."""
    parts: list[str] = []
    if report.added:
        ing = report.ingest
        extra = (
            f" ({int(ing.paragraphs_added)} new {_plural(int(ing.paragraphs_added), 'paragraph')})"
            if ing is not None
            else ""
        )
        parts.append(
            '<div class="rag-notice">Added and indexed '
            + ", ".join(f"<b>{esc(n)}</b>" for n in report.added)
            + f"{extra}.</div>"
        )
    for name, reason in report.rejected:
        parts.append(
            f'<div class="rag-error">Not added: <b>{esc(name)}</b>: {esc(reason)}. '
            "Nothing else was changed.</div>"
        )
    return "".join(parts)


CSS = """
.rag-answer .rag-text { line-height: 1.55; }
.rag-cite { font-size: 0.8em; vertical-align: super; text-decoration: none; font-weight: 600;
  margin-left: 1px; cursor: pointer; }
.rag-sources, .rag-see-also { margin-top: 0.6em; border-top: 1px solid var(--border-color-primary);
  padding-top: 0.4em; }
.rag-sources-title { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.05em;
  opacity: 0.7; margin-bottom: 0.2em; }
.rag-citation, .rag-passage { margin: 0.25em 0; }
.rag-citation summary, .rag-passage summary { cursor: pointer; font-size: 0.92em; }
.rag-marker { font-weight: 700; }
.rag-doc { font-family: var(--font-mono); font-size: 0.95em; }
.rag-section { font-style: italic; }
.rag-paragraph { margin: 0.35em 0 0.35em 0.4em; padding: 0.4em 0.7em;
  border-left: 3px solid var(--color-accent); font-size: 0.92em; }
.rag-citation > blockquote, .rag-passage > blockquote { margin-top: 0.2em !important; }
.rag-paragraph > p { margin: 0 !important; }
.rag-paragraph mark { background: #ffe58a; color: #111; padding: 0 1px; border-radius: 2px; }
.rag-citation.rag-flash { outline: 2px solid var(--color-accent); border-radius: 4px; }
.rag-abstain-box { border: 1px dashed #b7791f; background: rgba(236, 201, 75, 0.15);
  color: inherit; padding: 0.6em 0.8em; border-radius: 6px; font-weight: 600; }
.rag-abstain-box::before { content: "∅ "; opacity: 0.7; }
.rag-standalone { font-size: 0.85em; opacity: 0.75; margin-bottom: 0.3em; }
.rag-progress { opacity: 0.8; font-style: italic; }
.rag-progress-detail { font-size: 0.85em; opacity: 0.8; }
.rag-spinner { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.45em;
  border: 2px solid currentColor; border-right-color: transparent; border-radius: 50%;
  animation: rag-spin 0.9s linear infinite; vertical-align: -0.1em; }
@keyframes rag-spin { to { transform: rotate(360deg); } }
.rag-error { border-left: 3px solid #c53030; padding: 0.4em 0.7em;
  background: rgba(197,48,48,0.08); }
.rag-notice { border-left: 3px solid #3182ce; padding: 0.4em 0.7em;
  background: rgba(49,130,206,0.08); }
.rag-status table { width: 100%; font-size: 0.9em; margin: 0.4em 0; }
.rag-status td, .rag-status th { padding: 2px 4px; text-align: left; }
.rag-user { white-space: pre-wrap; }
"""

# Clicking a marker opens (and scrolls to) its source instead of following the link.
HEAD = """
<script>
document.addEventListener("click", function (ev) {
  var a = ev.target && ev.target.closest ? ev.target.closest("a.rag-cite") : null;
  if (!a) return;
  ev.preventDefault();
  ev.stopPropagation();
  var id = (a.getAttribute("href") || "").slice(1);
  var root = a.closest(".rag-answer") || document;
  var d = root.querySelector('[id="' + id + '"]') || document.getElementById(id);
  if (!d) return;
  d.open = true;
  d.classList.add("rag-flash");
  setTimeout(function () { d.classList.remove("rag-flash"); }, 1200);
  d.scrollIntoView({block: "nearest", behavior: "smooth"});
}, true);
</script>
"""
