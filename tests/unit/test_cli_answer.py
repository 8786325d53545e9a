"""What ``rag ask`` prints for an answer: each citation's quote in quotation marks, once."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rag.types import Answer, Citation
from rag_cli import app as cli

PARA = "“We are not here to replace anyone,” he said. The talks went on."


@pytest.mark.parametrize(
    ("quote", "line"),
    [
        (
            "“We are not here to replace anyone,” he said.",
            "[1] talks.md ¶2: “We are not here to replace anyone,” he said.",
        ),
        ("The talks went on.", "[1] talks.md ¶2: “The talks went on.”"),
    ],
)
def test_a_cited_quote_is_printed_in_quotation_marks_once(
    quote: str, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=buf, width=200, color_system=None))
    s = PARA.find(quote)
    cite = Citation(1, "talks.md", 2, "", PARA, quote, s, s + len(quote))
    cli._print_answer(Answer(text=f"{quote} [1]", abstained=False, citations=(cite,), question="q"))
    printed = buf.getvalue()
    assert line in printed
    assert "““" not in printed and "””" not in printed
