"""The UI's handlers and HTML rendering, with a fake chain (no model, no server)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from pydantic import SecretStr  # noqa: E402

from rag.errors import LLMError, RagError  # noqa: E402
from rag.settings import Settings, UISettings  # noqa: E402
from rag.status import IndexStatus  # noqa: E402
from rag.types import (  # noqa: E402
    ABSTENTION_TEXT,
    UNCONFIRMED_TEXT,
    Answer,
    AnswerEvent,
    Citation,
    Passage,
)
from ui import render  # noqa: E402
from ui.app import (  # noqa: E402
    ChatController,
    blocked_paths,
    build_app,
    example_questions,
    launch_kwargs,
)

PARA = (
    "Bhutan’s neutrality is viewed through the lens of strategic depth, notes Dr. Tenzin "
    "Wangchuk, a specialist in Himalayan geopolitics at the Kathmandu Policy Forum."
)
QUOTE = "a specialist in Himalayan geopolitics at the Kathmandu Policy Forum"
EVIL = 'Evil <script>alert("x")</script> & <img src=x onerror=alert(1)> paragraph.'


def cited_answer(
    question: str,
    text: str = PARA,
    quote: str = QUOTE,
    *,
    offsets: bool = True,
    standalone: str | None = None,
    section: str = "Historical Background",
) -> Answer:
    s = text.find(quote) if offsets else -1
    e = s + len(quote) if offsets else -1
    cite = Citation(1, "bhutan-qatar.md", 3, section, text, quote, s, e)
    return Answer(
        text="Dr. Tenzin Wangchuk is at the Kathmandu Policy Forum. [1]",
        abstained=False,
        citations=(cite,),
        passages=(Passage("bhutan-qatar.md", 3, section, text, 0.03, similarity=0.6),),
        standalone_question=standalone or question,
        question=question,
    )


def abstention(question: str, see_also: Sequence[Passage] = ()) -> Answer:
    return Answer(
        text=ABSTENTION_TEXT,
        abstained=True,
        see_also=tuple(see_also),
        standalone_question=question,
        question=question,
        reason="low relevance",
    )


class FakeChain:
    """Records each call and streams status, passages, drafts, then a hand-built Answer."""

    def __init__(
        self,
        answers: dict[str, Answer] | None = None,
        error: Exception | None = None,
        drafts: int = 5,
    ) -> None:
        self.answers = answers or {}
        self.error = error
        self.drafts = drafts
        self.calls: list[tuple[str, list[dict[str, str]]]] = []

    def stream(
        self, question: str, history: Sequence[dict[str, str]] | None = None
    ) -> Iterator[AnswerEvent]:
        self.calls.append((question, [dict(h) for h in (history or [])]))
        yield AnswerEvent("status", "Searching the sources…", standalone_question=question)
        if self.error is not None:
            raise self.error
        yield AnswerEvent(
            "passages",
            "Found 1 paragraphs.",
            passages=(Passage("bhutan-qatar.md", 3, "H", PARA, 0.03),),
        )
        yield AnswerEvent("status", "Reading the paragraphs…")
        for _ in range(self.drafts):
            yield AnswerEvent("draft", "SECRETDRAFT ")
        answer = self.answers.get(question) or cited_answer(question)
        yield AnswerEvent("final", answer=answer)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        data_dir=tmp_path / "data",
        ui=UISettings(max_input_chars=100),
    )


def run(ctl: ChatController, message: str, chat: list | None = None, history: list | None = None):
    """All yields of one respond() call."""
    return list(ctl.respond(message, chat or [], history or []))


# -- history -------------------------------------------------------------------------------


def test_first_question_has_no_history_and_history_grows(settings: Settings) -> None:
    chain = FakeChain()
    ctl = ChatController(settings, chain)
    chat, history, box, summary = run(ctl, "  Which institution?  ")[-1]
    assert chain.calls == [("Which institution?", [])]
    assert history == [
        {"role": "user", "content": "Which institution?"},
        {
            "role": "assistant",
            "content": "Dr. Tenzin Wangchuk is at the Kathmandu Policy Forum. [1]",
        },
    ]
    assert box == ""
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert summary["answer"].startswith("Dr. Tenzin Wangchuk")
    assert summary["citations"][0]["source"] == "bhutan-qatar.md"


def test_follow_up_gets_prior_turns_as_plain_role_content(settings: Settings) -> None:
    chain = FakeChain()
    ctl = ChatController(settings, chain)
    chat, history, _, _ = run(ctl, "Which institution?")[-1]
    chat2, history2, _, _ = run(ctl, "Where is it based?", chat, history)[-1]
    question, passed = chain.calls[1]
    assert question == "Where is it based?"
    assert passed == history  # plain text, not the chatbot's HTML
    assert all("<" not in m["content"] for m in passed)
    assert len(history2) == 4 and len(chat2) == 4


def test_inputs_are_not_mutated_so_sessions_stay_apart(settings: Settings) -> None:
    ctl = ChatController(settings, FakeChain())
    chat_a: list = []
    hist_a: list = []
    run(ctl, "Question A", chat_a, hist_a)
    assert chat_a == [] and hist_a == []
    _, hist_b, _, _ = run(ctl, "Question B")[-1]
    assert [h["content"] for h in hist_b if h["role"] == "user"] == ["Question B"]


def test_progress_is_shown_but_never_draft_tokens(settings: Settings) -> None:
    ctl = ChatController(settings, FakeChain(drafts=30))
    ctl.update_interval_s = 0.0
    steps = run(ctl, "Which institution?")
    progress = [s[0][-1]["content"] for s in steps[:-1]]
    assert any("Reading the paragraphs" in p for p in progress)
    assert any(re.search(r"Drafting the answer \(\d+ tokens\)", p) for p in progress)
    assert any("Found 1 paragraphs: bhutan-qatar.md ¶3" in p for p in progress)
    assert all("rag-progress" in p for p in progress)
    for s in steps:
        assert "SECRETDRAFT" not in s[0][-1]["content"]
    # while streaming, the history is untouched; the textbox is cleared at once
    assert all(s[1] == [] for s in steps[:-1])
    assert steps[0][2] == ""


# -- errors and input validation -----------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        LLMError("the model did not finish within 90 s"),
        RagError("the index is empty: run `rag ingest` first"),
    ],
)
def test_library_errors_become_a_chat_message(settings: Settings, exc: RagError) -> None:
    ctl = ChatController(settings, FakeChain(error=exc))
    chat, history, _, summary = run(ctl, "Which institution?")[-1]
    last = chat[-1]
    assert last["role"] == "assistant"
    assert "rag-error" in last["content"]
    assert render.esc(str(exc)) in last["content"]
    assert "Traceback" not in last["content"]
    assert history == [] and summary is None


def test_unexpected_error_is_generic_without_traceback(settings: Settings) -> None:
    ctl = ChatController(settings, FakeChain(error=ZeroDivisionError("secret internals")))
    chat, history, _, _ = run(ctl, "Which institution?")[-1]
    assert "rag-error" in chat[-1]["content"]
    assert "secret internals" not in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"]
    assert history == []


def test_input_too_long_gets_a_friendly_message(settings: Settings) -> None:
    chain = FakeChain()
    ctl = ChatController(settings, chain)
    long_q = "why " * 60  # 240 chars > 100
    steps = run(ctl, long_q)
    chat, history, box, _ = steps[-1]
    assert chain.calls == []
    assert "rag-notice" in chat[-1]["content"]
    assert "limit is 100" in chat[-1]["content"]
    assert box == long_q  # kept for editing
    assert history == []


@pytest.mark.parametrize("message", ["", "   \n\t", None])
def test_empty_input_does_nothing(settings: Settings, message: str | None) -> None:
    chain = FakeChain()
    ctl = ChatController(settings, chain)
    with pytest.warns(UserWarning, match="Type a question"):
        steps = list(ctl.respond(message, [{"role": "user", "content": "x"}], []))
    assert chain.calls == []
    assert steps[-1][0] == [{"role": "user", "content": "x"}]


def test_user_message_is_escaped(settings: Settings) -> None:
    ctl = ChatController(settings, FakeChain())
    chat, _, _, _ = run(ctl, "<script>alert(1)</script>?")[-1]
    assert "<script>" not in chat[0]["content"]
    assert "&lt;script&gt;" in chat[0]["content"]


def test_clear_resets_everything() -> None:
    assert ChatController.clear() == ([], [], "", None)


# -- rendering -----------------------------------------------------------------------------


def test_answer_has_linked_markers_and_a_source_that_opens_the_paragraph() -> None:
    html = render.render_answer(cited_answer("q"), "abc")
    assert '<a class="rag-cite" href="#rag-src-abc-1"' in html
    assert '<details class="rag-citation" id="rag-src-abc-1">' in html
    assert "bhutan-qatar.md" in html and "¶3" in html and "Historical Background" in html
    assert f"<mark>{QUOTE}</mark>" in html
    # the whole paragraph is there, not only the quote
    assert render.esc("Bhutan’s neutrality is viewed") in html
    assert "rag-abstain" not in html


def test_quote_is_located_when_offsets_are_missing() -> None:
    html = render.render_answer(
        cited_answer("q", offsets=False, quote="A specialist in  Himalayan geopolitics"), "u"
    )
    assert "<mark>a specialist in Himalayan geopolitics</mark>" in html


def test_unlocatable_quote_is_listed_instead_of_highlighted() -> None:
    html = render.render_answer(cited_answer("q", offsets=False, quote="not in the text"), "u")
    assert "<mark>" not in html
    assert "“not in the text”" in html


def test_an_unlocatable_quote_that_opens_a_quotation_is_shown_in_quotation_marks_once() -> None:
    quote = "“We are not here to replace anyone,” he said"
    html = render.render_answer(cited_answer("q", offsets=False, quote=quote), "u")
    assert render.esc(quote) in html
    assert render.esc("““") not in html


def test_document_html_is_escaped_everywhere() -> None:
    quote = '<script>alert("x")</script>'
    ans = cited_answer("q", text=EVIL, quote=quote, section="<b>bold</b>")
    html = render.render_answer(ans, "u")
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "<mark>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</mark>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    see = render.render_answer(abstention("q", [Passage("a<b>.md", 1, "", EVIL, 0.1)]), "u")
    assert "<script>" not in see and "a&lt;b&gt;.md" in see


def test_answer_text_is_escaped_but_markers_are_links() -> None:
    ans = Answer(
        text="Use <b>x</b> here. [1] and [7]",
        abstained=False,
        citations=cited_answer("q").citations,
        question="q",
        standalone_question="q",
    )
    html = render.render_answer(ans, "u")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'href="#rag-src-u-1"' in html
    assert "[7]" in html and "rag-src-u-7" not in html  # no source 7: left as text


def test_two_quotes_from_one_paragraph_share_a_marker() -> None:
    a = cited_answer("q")
    q2 = "Bhutan’s neutrality"
    c2 = Citation(1, "bhutan-qatar.md", 3, "Historical Background", PARA, q2, 0, len(q2))
    html = render.render_answer(
        Answer(a.text, False, a.citations + (c2,), question="q", standalone_question="q"), "u"
    )
    assert html.count('<details class="rag-citation"') == 1
    assert html.count("<mark>") == 2


def test_highlight_merges_overlaps_and_clamps() -> None:
    assert render.highlight("abcdef", [(1, 3), (2, 4), (-5, 0), (5, 99)]) == (
        "a<mark>bcd</mark>e<mark>f</mark>"
    )


def test_abstention_looks_different_and_lists_see_also() -> None:
    p = Passage("bhutan-qatar.md", 2, "Intro", "Bhutan is a kingdom.", 0.02, similarity=0.3)
    html = render.render_answer(abstention("What is the population of Bhutan?", [p]), "u")
    assert 'class="rag-abstain-box"' in html
    assert ABSTENTION_TEXT in html
    assert "See also" in html and "bhutan-qatar.md" in html and "¶2" in html
    assert "rag-cite" not in html
    bare = render.render_answer(abstention("q"), "u")
    assert "See also" not in bare and ABSTENTION_TEXT in bare


def test_rewritten_follow_up_shows_the_standalone_question() -> None:
    html = render.render_answer(
        cited_answer("Where is he?", standalone="Where is Dr. Tenzin Wangchuk <based>?"), "u"
    )
    assert "Searched for: “Where is Dr. Tenzin Wangchuk &lt;based&gt;?”" in html
    assert "Searched for" not in render.render_answer(cited_answer("same"), "u")


def test_abstention_through_the_handler(settings: Settings) -> None:
    q = "What is the population of Bhutan?"
    ctl = ChatController(settings, FakeChain(answers={q: abstention(q)}))
    chat, history, _, summary = run(ctl, q)[-1]
    assert "rag-abstain-box" in chat[-1]["content"]
    assert summary["abstained"] is True
    assert history[-1]["content"] == ABSTENTION_TEXT


def test_status_panel_escapes_and_counts() -> None:
    st = IndexStatus(
        location="/x",
        collection="corpus",
        exists=True,
        embedding_model="all-MiniLM-L6-v2",
        configured_model="all-MiniLM-L6-v2",
        chunks=12,
        documents={"<evil>.md": {"paragraphs": 9, "chunks": 12}},
    )
    html = render.render_status(st)
    assert "&lt;evil&gt;.md" in html and "<evil>" not in html
    assert "<td>9</td>" in html
    missing = render.render_status(IndexStatus(location="/y", collection="c", exists=False))
    assert "No index yet" in missing


# -- app wiring and launch settings -------------------------------------------------------


def test_build_app_wires_queue_and_api(settings: Settings) -> None:
    import gradio as gr

    demo = build_app(settings, FakeChain())
    assert isinstance(demo, gr.Blocks)
    assert demo._queue.default_concurrency_limit == settings.ui.retrieval_concurrency
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    assert fns["ask"].concurrency_limit == settings.ui.retrieval_concurrency
    assert fns["ask"].concurrency_id == "chat"
    assert fns["_reindex"].concurrency_limit == 1


def test_launch_defaults_are_safe(settings: Settings) -> None:
    kw = launch_kwargs(settings)
    assert kw["server_name"] == "127.0.0.1"
    assert kw["server_port"] == 7860
    assert kw["share"] is False
    assert kw["auth"] is None
    assert kw["allowed_paths"] == []
    assert kw["show_error"] is False
    assert str(Path(settings.corpus_dir).resolve()) in kw["blocked_paths"]
    assert str(settings.index_dir.resolve()) in blocked_paths(settings)


def test_launch_uses_password_when_set(settings: Settings) -> None:
    s = settings.model_copy(update={"ui": UISettings(username="ann", password=SecretStr("pw"))})
    assert launch_kwargs(s)["auth"] == ("ann", "pw")


def test_example_questions(tmp_path: Path, settings: Settings) -> None:
    seed = Settings(corpus_dir=Path(__file__).resolve().parents[2] / "corpus")
    assert "Which institution is Dr. Tenzin Wangchuk affiliated with?" in example_questions(seed)
    corpus = tmp_path / "other"
    corpus.mkdir()
    (corpus / "notes.md").write_text("# Notes\n\n## Budget\n\nThe budget is 5.\n")
    qs = example_questions(Settings(corpus_dir=corpus))
    assert any("Budget" in q for q in qs)
    assert example_questions(settings)  # missing corpus: generic questions


def test_default_chain_always_takes_the_llm_lock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: concurrent requests crashed llama.cpp because the lazily loaded model was
    treated as injected and generation ran unlocked (rag.chain.AnswerChain._lock). The lock must be
    held while tokens are generated, and the library's deadline must start only after it."""
    import threading
    from contextlib import contextmanager

    import rag.chain

    lock = threading.Lock()
    entered: list[float] = []

    @contextmanager
    def fake_lock(_settings: Settings) -> Iterator[None]:
        with lock:
            entered.append(1)
            yield

    monkeypatch.setattr(rag.chain, "llm_lock", fake_lock)
    chain = ChatController(settings).chain
    chain._llm = object()  # what the lazy `llm` property does on first use

    class Runnable:
        def stream(self, inputs: dict) -> Iterator[str]:
            assert lock.locked(), "generation ran without the LLM lock"
            yield "a"
            yield "b"

    assert list(chain.generate(Runnable(), {})) == ["a", "b"]
    assert entered == [1] and not lock.locked()
    # a request that waited for the lock longer than the timeout still generates
    chain.settings = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"timeout_s": 0.2})}
    )
    lock.acquire()
    t = threading.Timer(0.5, lock.release)
    t.start()
    assert list(chain.generate(Runnable(), {})) == ["a", "b"]
    t.join()


def test_unconfirmed_evidence_is_shown_in_the_abstention_box_never_as_an_answer() -> None:
    cite = Citation(1, "bhutan-qatar.md", 3, "", PARA, QUOTE, PARA.find(QUOTE), -1)
    ans = Answer(
        text=f"{UNCONFIRMED_TEXT} “{QUOTE}” [1]",
        abstained=True,
        evidence=(cite,),
        outcome="unconfirmed",
        stage="gate",
        standalone_question="q",
        question="q",
    )
    html = render.render_answer(ans, "u")
    assert "rag-abstain-box" in html and render.esc(UNCONFIRMED_TEXT) in html
    assert "Closest passage" in html and "bhutan-qatar.md" in html
    # The whole paragraph opens from its marker, as for an answer.
    assert '<a class="rag-cite" href="#rag-src-u-1"' in html
    assert render.esc(ABSTENTION_TEXT) not in html
