"""The real app (real retrieval, real LLM) driven by a real headless Chromium.

Set ``UI_SCREENSHOT=docs/screenshot.png`` to also save a screenshot of the cited answer with
its citation opened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio  # noqa: E402,F401
import pytest

from rag.settings import Settings  # noqa: E402
from tests.servers import free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.llm]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 240_000  # first answer includes loading the embedder and the LLM

Q_CITED = "Which institution is Dr. Tenzin Wangchuk affiliated with?"
Q_ABSENT = "What is the population of Bhutan?"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.fail(
            f"Chromium not found at {CHROMIUM} or on PATH: the browser test needs it. "
            "Install it with `apt-get install -y chromium` (scripts/test.sh does) or set CHROMIUM."
        )
    return path


@pytest.fixture(scope="module")
def app_url(real_settings: Settings) -> Iterator[str]:
    from ui.app import launch

    # A generous generation timeout: this checks the UI, not the model's speed on a busy CPU.
    settings = real_settings.model_copy(
        update={
            "ui": real_settings.ui.model_copy(update={"port": free_port()}),
            "llm": real_settings.llm.model_copy(update={"timeout_s": 600.0}),
        }
    )
    demo = launch(settings, block=False, quiet=True)  # the real chain (rag.get_chain)
    try:
        yield f"http://127.0.0.1:{settings.ui.port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(chromium_path: str, app_url: str) -> Iterator[Any]:
    import playwright.sync_api as sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 1000})
            pg.goto(app_url, wait_until="domcontentloaded")
            pg.wait_for_selector("#rag-input textarea", timeout=60_000)
            yield pg
        finally:
            browser.close()


def _ask(page: Any, question: str, timeout_ms: int = ANSWER_TIMEOUT_MS) -> Any:
    """Type a question, press Enter, and return the locator of the new bot message."""
    before = page.locator(".rag-answer").count()
    box = page.locator("#rag-input textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.rag-answer').length > n",
        arg=before,
        timeout=timeout_ms,
    )
    return page.locator(".rag-answer").nth(before)


def test_cited_answer_opens_the_highlighted_paragraph(page: Any) -> None:
    # the corpus panel shows the indexed document
    page.wait_for_selector("#rag-status .rag-docs", timeout=60_000)
    assert "bhutan-qatar.md" in page.inner_text("#rag-status")

    answer = _ask(page, Q_CITED)
    assert "rag-abstained" not in (answer.get_attribute("class") or ""), answer.inner_text()
    text = answer.locator(".rag-text").inner_text()
    assert answer.locator("a.rag-cite").count() >= 1, text
    citations = answer.locator("details.rag-citation")
    assert citations.count() >= 1
    assert "Kathmandu Policy Forum" in (text + answer.locator(".rag-sources").inner_text())

    # click the first marker: its source opens, showing the whole paragraph, quote marked
    marker = answer.locator("a.rag-cite").first
    target = (marker.get_attribute("href") or "").lstrip("#")
    marker.click()
    details = answer.locator(f'details[id="{target}"]')
    page.wait_for_function("el => el.open", arg=details.element_handle(), timeout=5_000)
    mark = details.locator("blockquote mark").first
    mark.wait_for(state="visible", timeout=5_000)
    quote = mark.inner_text().strip()
    paragraph = details.locator("blockquote").inner_text()
    assert quote and quote in paragraph
    assert len(paragraph) > len(quote)  # the whole paragraph, not just the quote
    summary = details.locator("summary").inner_text()
    assert "bhutan-qatar.md" in summary and "¶" in summary
    # the citation that mentions the institution is among the sources
    assert any(
        "Kathmandu Policy Forum" in citations.nth(i).locator("blockquote").inner_text()
        for i in range(citations.count())
    )
    # no draft text is left behind and no script from documents ran
    assert page.locator(".rag-progress").count() == 0

    shot = os.environ.get("UI_SCREENSHOT")
    if shot:
        details.scroll_into_view_if_needed()
        page.screenshot(path=shot, full_page=False)


def test_unanswerable_question_shows_the_abstention(page: Any) -> None:
    answer = _ask(page, Q_ABSENT)
    assert "rag-abstained" in (answer.get_attribute("class") or "")
    box = answer.locator(".rag-abstain-box")
    assert box.is_visible()
    assert box.inner_text().strip().endswith("The source does not say.")
    assert answer.locator("a.rag-cite").count() == 0


def test_the_paragraphs_found_are_shown_before_the_answer(page: Any) -> None:
    # The user sees which paragraphs are being read while the model reads them (the time it
    # takes is a benchmark: bench/answers.py "first visible progress"), never a blank wait.
    before = page.locator(".rag-answer").count()
    box = page.locator("#rag-input textarea")
    box.fill("Where was the Joint Communiqué between Bhutan and Qatar signed?")
    box.press("Enter")
    found = page.locator(".rag-progress-detail", has_text="Found")
    found.wait_for(state="visible", timeout=ANSWER_TIMEOUT_MS)
    detail = found.inner_text()
    answers_then = page.locator(".rag-answer").count()
    assert answers_then == before, "the answer came before the paragraphs it read"
    assert "bhutan-qatar.md" in detail and "¶" in detail, detail
    page.wait_for_function(
        "n => document.querySelectorAll('.rag-answer').length > n",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    assert page.locator(".rag-progress").count() == 0
