"""Adding documents in the real app, driven by a real headless Chromium: upload a .md, an
.html and a .pdf, see them in the corpus panel, ask a question only the PDF answers, open its
citation (page and paragraph), then upload a corrupt file and see one clear message while
nothing else changes.

Set ``UI_UPLOAD_SCREENSHOT=docs/screenshot-upload.png`` to save a screenshot of the opened
PDF citation with the corpus panel.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.settings import Settings
from tests.integration.test_ui_browser import (
    CHROMIUM_ARGS,
    chromium_path,  # noqa: F401  (fixture)
)
from tests.integration.test_ui_browser import _ask as ask_in_page
from tests.paths import settings_in
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real_docs" / "corpus"
SEED = ROOT / "corpus" / "bhutan-qatar.md"
PDF = "lake-verrin-report.pdf"
Q_PDF = "How much did the committee estimate the Brannock wetland would cost?"
UPLOAD_TIMEOUT_MS = 600_000  # checking, copying and embedding on a busy CPU
ANSWER_TIMEOUT_MS = 900_000  # the first answer loads the LLM; the test checks the UI, not speed


def _ask(page: Any, question: str) -> Any:
    return ask_in_page(page, question, ANSWER_TIMEOUT_MS)


@pytest.fixture(scope="module")
def upload_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    from rag.ingest import ingest
    from ui.app import launch

    base = tmp_path_factory.mktemp("upload")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    settings = settings_in(base, corpus)
    ingest(settings)
    settings = settings.model_copy(
        update={
            "ui": settings.ui.model_copy(update={"port": free_port()}),
            "llm": settings.llm.model_copy(update={"timeout_s": 900.0}),
        }
    )
    demo = launch(settings, block=False, quiet=True)
    try:
        yield settings, f"http://127.0.0.1:{settings.ui.port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(chromium_path: str, upload_env: tuple[Settings, str]) -> Iterator[Any]:  # noqa: F811
    import playwright.sync_api as sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1100})
            pg.goto(upload_env[1], wait_until="domcontentloaded")
            pg.wait_for_selector("#rag-status .rag-docs", timeout=60_000)
            yield pg
        finally:
            browser.close()


def _upload(page: Any, files: list[Path], expect: str) -> str:
    """Drop files on the upload box; return the corpus message once a result line naming
    ``expect`` (a file of this upload) is shown."""
    done = (
        "want => Array.from(document.querySelectorAll("
        "'#rag-corpus-msg .rag-notice, #rag-corpus-msg .rag-error'))"
        ".some(el => el.innerText.includes(want))"
    )
    page.set_input_files("#rag-upload input[type=file]", [str(f) for f in files])
    page.wait_for_function(done, arg=expect, timeout=UPLOAD_TIMEOUT_MS)
    return page.inner_text("#rag-corpus-msg")


def test_upload_ask_the_pdf_and_open_its_page(
    page: Any, upload_env: tuple[Settings, str], tmp_path: Path
) -> None:
    settings = upload_env[0]
    md = tmp_path / "field notes.md"
    md.write_text(
        "# Field notes\n\nThe survey boat Heron was repainted grey in the winter break.\n",
        encoding="utf-8",
    )
    msg = _upload(page, [md, REAL / "rustdoc-command-line-arguments.html", REAL / PDF], PDF)
    assert "Added and indexed" in msg and "Not added" not in msg, msg
    status = page.inner_text("#rag-status")
    for name in ("field notes.md", "rustdoc-command-line-arguments.html", PDF):
        assert name in status, status
        assert (settings.corpus_dir / name).is_file()

    answer = _ask(page, Q_PDF)
    assert "rag-abstained" not in (answer.get_attribute("class") or ""), answer.inner_text()
    marker = answer.locator("a.rag-cite").first
    target = (marker.get_attribute("href") or "").lstrip("#")
    marker.click()
    details = answer.locator(f'details[id="{target}"]')
    page.wait_for_function("el => el.open", arg=details.element_handle(), timeout=5_000)
    summary = details.locator("summary").inner_text().replace("\xa0", " ")
    assert PDF in summary and "p. 3" in summary and "¶" in summary, summary
    paragraph = details.locator("blockquote").inner_text()
    assert "one point four million euros" in paragraph
    assert details.locator("blockquote mark").count() >= 1

    shot = os.environ.get("UI_UPLOAD_SCREENSHOT")
    if shot:
        details.scroll_into_view_if_needed()
        page.screenshot(path=shot, full_page=False)


def test_corrupt_upload_gets_one_message_and_changes_nothing(
    page: Any, upload_env: tuple[Settings, str], tmp_path: Path
) -> None:
    settings = upload_env[0]
    before_files = sorted(p.name for p in settings.corpus_dir.iterdir())
    before_status = page.inner_text("#rag-status")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    msg = _upload(page, [bad], "broken.pdf")
    errors = page.locator("#rag-corpus-msg .rag-error")
    assert errors.count() == 1, msg
    assert "broken.pdf" in msg and "PDF" in msg and "Nothing else was changed" in msg
    assert "Added" not in msg
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before_files
    assert page.inner_text("#rag-status") == before_status
