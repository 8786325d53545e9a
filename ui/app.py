"""The web UI: the Gradio 6 app and its event handlers over the rag library.

``build_app(settings, chain=None)`` returns the ``gr.Blocks``; ``launch(settings)`` serves it on
``settings.ui.host:port`` (127.0.0.1:7860 by default), prints the URL and blocks.

* Chat with history kept in per-session ``gr.State`` (never a global), passed to
  ``chain.stream(question, history)`` as ``[{"role", "content"}]`` so follow-ups work.
* While an answer is prepared only progress is shown ("Reading the paragraphs…",
  "Drafting the answer (N tokens)…"); the model's unverified draft never appears. The
  ``final`` event's verified ``Answer`` is rendered with clickable ``[n]`` markers and a
  sources list whose entries open the whole cited paragraph with the quote in ``<mark>``.
* Safe by default: loopback, no share link, optional password, no file routes beyond
  Gradio's own, project folders explicitly blocked, everything from documents escaped.
* Concurrency: see ``docs/ui.md``. Up to ``settings.ui.retrieval_concurrency`` chat requests
  run at once (retrieval in parallel); the library's lock lets one at a time use the LLM.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import gradio as gr

from rag.errors import RagError
from rag.loading import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from rag.paragraphs import paragraph_label
from rag.settings import Settings
from rag.types import Answer, AnswerEvent
from ui import render

logger = logging.getLogger(__name__)

TITLE = "groundedchat"

SEED_EXAMPLES = [
    "Which institution is Dr. Tenzin Wangchuk affiliated with?",
    "In what year did Bhutan gain its independence?",
    "Which organization is Dr. Ahmed Al-Thani an analyst at?",
    "What is the population of Bhutan?",
]

#: what the upload box accepts (the loaders' file types)
UPLOAD_TYPES = tuple(SUPPORTED_SUFFIXES)

GENERIC_EXAMPLES = [
    "What is the main topic of the documents?",
    "Who is quoted in the documents?",
]


class StreamingChain(Protocol):
    """What the UI needs from ``rag.AnswerChain``."""

    def stream(
        self, question: str, history: Sequence[dict[str, str]] | None = None
    ) -> Iterator[AnswerEvent]: ...


ChatMessages = list[dict[str, Any]]
History = list[dict[str, str]]


# -- helpers --------------------------------------------------------------------------------


def example_questions(settings: Settings) -> list[str]:
    """Fixed questions for the seed article; otherwise questions built from the first
    document's section headings (no model is loaded)."""
    corpus = Path(settings.corpus_dir)
    if (corpus / "bhutan-qatar.md").is_file():
        return list(SEED_EXAMPLES)
    try:
        from rag.loading import iter_corpus_files, load_document

        for path, source in iter_corpus_files(corpus):
            try:
                doc = load_document(path, source)
            except Exception:
                continue
            heads = [b.text.strip() for b in doc.blocks if b.kind == "heading" and b.text.strip()]
            qs = [f"What does {source} say about {h.rstrip(':.')}?" for h in heads[:3]]
            return qs or [f"What is {source} about?"]
    except Exception:  # examples are a convenience: never fail the app for them
        logger.debug("could not derive example questions", exc_info=True)
    return list(GENERIC_EXAMPLES)


def _answer_summary(answer: Answer) -> dict[str, Any]:
    """A small JSON view of the final answer (for API clients and the load benchmark)."""
    return answer.to_dict(
        fields=(
            "answer",
            "outcome",
            "abstained",
            "citations",
            "evidence",
            "see_also",
            "stage",
            "standalone_question",
            "reason",
            "timings",
        ),
        citation_fields=("marker", "source", "paragraph", "page", "quote"),
    )


def _passages_detail(passages: Sequence[Any]) -> str:
    names = ", ".join(paragraph_label(p.source, p.paragraph, p.page) for p in list(passages)[:4])
    more = f" (+{len(passages) - 4})" if len(passages) > 4 else ""
    return (
        f"Found {len(passages)} paragraphs: {names}{more}" if passages else "No paragraphs found."
    )


def make_chain(settings: Settings) -> StreamingChain:
    """The library's chain for these settings (it serialises llama.cpp calls itself)."""
    from rag.chain import get_chain

    return get_chain(settings)


# -- the chat controller --------------------------------------------------------------------


class ChatController:
    """The event handlers, independent of the Blocks layout (unit-tested with a fake chain)."""

    #: seconds between streamed progress updates while the model drafts
    update_interval_s = 0.25

    def __init__(self, settings: Settings, chain: StreamingChain | None = None) -> None:
        self.settings = settings
        self._chain = chain

    @property
    def chain(self) -> StreamingChain:
        if self._chain is None:
            self._chain = make_chain(self.settings)
        return self._chain

    def respond(
        self, message: str | None, chat: ChatMessages | None, history: History | None
    ) -> Iterator[tuple[ChatMessages, History, str, dict[str, Any] | None]]:
        """Handle one question. Yields (chat messages, history state, textbox, answer JSON).

        ``chat`` is what the Chatbot shows (HTML); ``history`` is the plain-text conversation
        the chain sees. Neither is mutated in place.
        """
        chat = list(chat or [])
        history = [dict(h) for h in (history or [])]
        question = (message or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield list(chat), list(history), message or "", None
            return
        limit = self.settings.ui.max_input_chars
        if len(question) > limit:
            shown = question[:200] + ("…" if len(question) > 200 else "")
            chat += [
                {"role": "user", "content": render.render_user(shown)},
                {
                    "role": "assistant",
                    "content": render.render_notice(
                        f"Your message is {len(question):,} characters long; the limit is "
                        f"{limit:,}. Please shorten it and ask again."
                    ),
                },
            ]
            # keep the text in the box so it can be edited
            yield list(chat), list(history), message or "", None
            return

        chat += [
            {"role": "user", "content": render.render_user(question)},
            {"role": "assistant", "content": render.render_progress("Starting…")},
        ]
        yield list(chat), list(history), "", None

        answer: Answer | None = None
        status, detail, tokens = "Starting…", "", 0
        last = time.monotonic()
        try:
            for event in self.chain.stream(question, history):
                if event.kind == "final":
                    answer = event.answer
                    break
                if event.kind == "status":
                    status = event.message or status
                    if event.standalone_question and event.standalone_question.strip() != question:
                        detail = f"Searching for: {event.standalone_question}"
                elif event.kind == "passages":
                    status = event.message or status
                    detail = _passages_detail(event.passages)
                elif event.kind == "draft":
                    tokens += 1
                    status = f"Drafting the answer ({tokens} tokens)…"
                    now = time.monotonic()
                    if now - last < self.update_interval_s:
                        continue
                    last = now
                chat[-1] = {"role": "assistant", "content": render.render_progress(status, detail)}
                yield list(chat), list(history), "", None
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": render.render_error(str(exc))}
            yield list(chat), list(history), "", None
            return
        except Exception:  # never show a traceback in the page
            logger.exception("unexpected error while answering")
            chat[-1] = {
                "role": "assistant",
                "content": render.render_error(
                    "Something went wrong while answering; the details are in the server log."
                ),
            }
            yield list(chat), list(history), "", None
            return
        if answer is None:
            chat[-1] = {
                "role": "assistant",
                "content": render.render_error("The answer was interrupted; please ask again."),
            }
            yield list(chat), list(history), "", None
            return
        chat[-1] = {
            "role": "assistant",
            "content": render.render_answer(answer, uuid.uuid4().hex[:10]),
        }
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer.text},
        ]
        yield list(chat), list(history), "", _answer_summary(answer)

    @staticmethod
    def clear() -> tuple[ChatMessages, History, str, None]:
        return [], [], "", None

    def status_html(self) -> str:
        from rag.status import index_status

        try:
            return render.render_status(index_status(self.settings))
        except RagError as exc:
            return render.render_error(str(exc))
        except Exception:
            logger.exception("index status failed")
            return render.render_error("The index status could not be read.")

    def reindex(self, progress: Callable[..., Any] | None = None) -> tuple[str, str]:
        """Run ``rag.ingest`` (only changes are embedded); returns (message, status HTML)."""
        from rag.ingest import ingest

        def cb(done: int, total: int) -> None:
            if progress is not None:
                progress((done, max(total, 1)), desc="Embedding chunks", unit="chunks")

        try:
            report = ingest(self.settings, progress=cb)
        except RagError as exc:
            gr.Warning(str(exc))
            return render.render_error(str(exc)), self.status_html()
        except Exception:
            logger.exception("re-index failed")
            msg = "Re-indexing failed; the details are in the server log."
            gr.Warning(msg)
            return render.render_error(msg), self.status_html()
        return render.render_notice(report.summary()), self.status_html()

    def document_names(self) -> list[str]:
        """The corpus folder's documents (what "Remove" offers)."""
        from rag.loading import iter_corpus_files

        try:
            return [
                src
                for path, src in iter_corpus_files(Path(self.settings.corpus_dir))
                if path.suffix.lower() in SUPPORTED_SUFFIXES
            ]
        except RagError:
            return []

    def upload(
        self,
        files: Sequence[str] | str | None,
        replace: bool = False,
        progress: Callable[..., Any] | None = None,
    ) -> tuple[str, str, list[str]]:
        """Add uploaded files to the corpus and index them; returns (message HTML, status
        HTML, document names). A file that cannot be added gets one line saying why."""
        from rag.uploads import add_documents

        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            return "", self.status_html(), self.document_names()

        def checked(name: str, reason: str | None) -> None:
            if progress is not None:
                progress(None, desc=f"Checking {name}")

        def embedded(done: int, total: int) -> None:
            if progress is not None:
                progress((done, max(total, 1)), desc="Indexing", unit="chunks")

        try:
            report = add_documents(
                [(Path(p), Path(p).name) for p in paths],
                self.settings,
                replace=bool(replace),
                progress=embedded,
                on_checked=checked,
            )
        except RagError as exc:
            return render.render_error(str(exc)), self.status_html(), self.document_names()
        except Exception:
            logger.exception("upload failed")
            msg = "Adding the documents failed; the details are in the server log."
            return render.render_error(msg), self.status_html(), self.document_names()
        return render.render_upload(report), self.status_html(), self.document_names()

    def remove(
        self, source: str | None, progress: Callable[..., Any] | None = None
    ) -> tuple[str, str, list[str]]:
        """Delete one document from the corpus folder and the index."""
        from rag.uploads import remove_document

        if not source:
            return (
                render.render_notice("Choose a document to remove."),
                self.status_html(),
                (self.document_names()),
            )

        def embedded(done: int, total: int) -> None:
            if progress is not None:
                progress((done, max(total, 1)), desc="Updating the index", unit="chunks")

        try:
            remove_document(source, self.settings, progress=embedded)
        except RagError as exc:
            return render.render_error(str(exc)), self.status_html(), self.document_names()
        except Exception:
            logger.exception("remove failed")
            msg = "Removing the document failed; the details are in the server log."
            return render.render_error(msg), self.status_html(), self.document_names()
        return (
            render.render_notice(f"Removed {source} from the corpus and the index."),
            self.status_html(),
            self.document_names(),
        )


# -- the app --------------------------------------------------------------------------------


def concurrency_limit(settings: Settings) -> int:
    """How many chat requests run at once (see docs/ui.md)."""
    return max(1, int(settings.ui.retrieval_concurrency))


def build_app(settings: Settings | None = None, chain: StreamingChain | None = None) -> gr.Blocks:
    """The Gradio Blocks app. ``chain`` is injectable (tests); default ``rag.get_chain``."""
    settings = settings or Settings()
    ctl = ChatController(settings, chain)
    limit = concurrency_limit(settings)

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        gr.Markdown(
            f"## {TITLE}\nAnswers **only** from the indexed documents. Every statement links "
            "to the paragraph it came from; click a marker like [1] or a source to read it."
        )
        history = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    label="Chat",
                    elem_id="rag-chat",
                    height=600,
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=["copy"],
                    group_consecutive_messages=False,
                    placeholder="Ask a question about the documents.",
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask about the documents…",
                        show_label=False,
                        lines=1,
                        max_lines=6,
                        scale=8,
                        elem_id="rag-input",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-send")
                clear = gr.Button("New conversation", size="sm", elem_id="rag-clear")
                answer_json = gr.JSON(visible=False, label="answer")
            with gr.Column(scale=1, min_width=260):
                gr.Markdown("### Corpus")
                status = gr.HTML(elem_id="rag-status")
                uploader = gr.File(
                    label=f"Add documents ({' '.join(UPLOAD_TYPES)}, up to "
                    f"{MAX_FILE_BYTES // 1_000_000} MB each)",
                    file_count="multiple",
                    file_types=list(UPLOAD_TYPES),
                    type="filepath",
                    height=110,
                    elem_id="rag-upload",
                )
                replace = gr.Checkbox(
                    label="Replace documents with the same name",
                    value=False,
                    elem_id="rag-replace",
                )
                reindex_msg = gr.HTML(elem_id="rag-corpus-msg")
                with gr.Row():
                    remove_choice = gr.Dropdown(
                        choices=ctl.document_names(),
                        value=None,
                        label="Remove a document",
                        scale=3,
                        elem_id="rag-remove-choice",
                    )
                    remove_btn = gr.Button("Remove", size="sm", scale=1, elem_id="rag-remove")
                reindex_btn = gr.Button("Re-index", size="sm", elem_id="rag-reindex")
                gr.Examples(
                    examples=[[q] for q in example_questions(settings)],
                    inputs=[box],
                    label="Example questions",
                )

        outputs = [chatbot, history, box, answer_json]
        # Enter and the Ask button: one handler, one concurrency group
        ask: dict[str, Any] = {
            "fn": ctl.respond,
            "inputs": [box, chatbot, history],
            "outputs": outputs,
            "concurrency_limit": limit,
            "concurrency_id": "chat",
            "show_progress": "minimal",
        }
        box.submit(**ask, api_name="ask")
        send.click(**ask, api_visibility="private")
        clear.click(ctl.clear, None, outputs, queue=False, api_visibility="private")
        # the Chatbot's own trash button must forget the conversation too
        chatbot.clear(ctl.clear, None, outputs, queue=False, api_visibility="private")

        def _reindex(progress: gr.Progress = gr.Progress()) -> tuple[str, str]:  # noqa: B008
            return ctl.reindex(progress)

        reindex_btn.click(
            _reindex,
            None,
            [reindex_msg, status],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )

        def _upload(
            files: list[str] | None,
            replace_: bool,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> tuple[str, str, Any, None]:
            msg, html_, names = ctl.upload(files, replace_, progress)
            return msg, html_, gr.update(choices=names, value=None), None

        uploader.upload(
            _upload,
            [uploader, replace],
            [reindex_msg, status, remove_choice, uploader],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )

        def _remove(
            source: str | None,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> tuple[str, str, Any]:
            msg, html_, names = ctl.remove(source, progress)
            return msg, html_, gr.update(choices=names, value=None)

        remove_btn.click(
            _remove,
            [remove_choice],
            [reindex_msg, status, remove_choice],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        demo.load(ctl.status_html, None, status, api_name="status")
        demo.load(
            lambda: gr.update(choices=ctl.document_names()),
            None,
            remove_choice,
            api_visibility="private",
        )

    demo.queue(default_concurrency_limit=limit, max_size=max(64, 8 * limit))
    return demo


# -- launching ------------------------------------------------------------------------------


def _theme() -> gr.themes.Base:
    # System fonts only: the default theme would fetch Google Fonts (the app is offline/local).
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def blocked_paths(settings: Settings) -> list[str]:
    """Folders the file route must never serve (on top of Gradio's own default refusal)."""
    paths = {
        Path.cwd(),
        Path(settings.corpus_dir),
        Path(settings.data_dir),
        settings.index_dir,
        settings.model_cache_dir,
        Path.home(),
    }
    return sorted(str(p.resolve()) for p in paths)


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """The keyword arguments for ``Blocks.launch`` (secure defaults from settings.ui)."""
    ui = settings.ui
    password = ui.password.get_secret_value() if ui.password is not None else ""
    return {
        "server_name": ui.host,
        "server_port": ui.port,
        "share": bool(ui.share),
        "auth": (ui.username, password) if password else None,
        "auth_message": "groundedchat: log in" if password else None,
        "show_error": False,
        "allowed_paths": [],
        "blocked_paths": blocked_paths(settings),
        "max_file_size": MAX_FILE_BYTES,  # uploads: the loader's own size limit
        "ssr_mode": False,
        "mcp_server": False,
        "strict_cors": True,
        "footer_links": ["api", "settings"],
        "theme": _theme(),
        "css": render.CSS,
        "head": render.HEAD,
    }


def launch(
    settings: Settings | None = None,
    chain: StreamingChain | None = None,
    *,
    block: bool = True,
    quiet: bool = False,
) -> gr.Blocks:
    """Serve the app on settings.ui.host:port, print the local URL, and (by default) block.

    With ``block=False`` the server runs in a background thread and the Blocks is returned
    (call ``.close()`` to stop it).
    """
    settings = settings or Settings()
    demo = build_app(settings, chain)
    kwargs = launch_kwargs(settings)
    try:
        _, local_url, share_url = demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    except OSError as exc:
        raise RagError(
            f"cannot serve on {settings.ui.host}:{settings.ui.port}: {exc} "
            "(use --port or RAG_UI__PORT)"
        ) from exc
    if not quiet:
        print(f"groundedchat UI running on {local_url}", flush=True)
        if share_url:
            print(f"public share link: {share_url}", flush=True)
        if kwargs["auth"]:
            print(f"login required (user {settings.ui.username!r})", flush=True)
    if block:
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
    return demo
