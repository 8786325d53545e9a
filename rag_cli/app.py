"""The ``rag`` command: parses options, calls the library (or starts the UI or the API), prints.
Expected errors print one line and exit non-zero."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rag.errors import RagError
from rag.paragraphs import paragraph_label
from rag.settings import Settings
from rag.text import quoted
from rag.types import IngestReport
from rag_cli.common import err, fail, new_app, out, quiet_libraries, settings_from
from rag_cli.common import errors as _errors

app = new_app("Answer questions only from your documents, citing the paragraph behind every claim.")

CorpusOpt = Annotated[
    Path | None,
    typer.Option("--corpus", help="Corpus folder (env RAG_CORPUS_DIR; default: ./corpus)"),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Index folder (env RAG_DB_DIR; default: ./data/chroma)")
]

T = TypeVar("T")


@contextmanager
def _command() -> Iterator[None]:
    """What every command runs in: quiet libraries, and expected errors as one line."""
    quiet_libraries()
    with _errors():
        yield


def _with_progress(fn: Callable[[Callable[[int, int], None]], T], label: str) -> T:
    """Run ``fn`` with a progress callback; the bar appears only once there is progress to
    show, so a run that fails early prints its one error line and nothing else."""
    progress: Progress | None = None
    task: Any = None

    def update(done: int, total: int) -> None:
        nonlocal progress, task
        if progress is None:
            if total <= 0:
                return
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err,
                transient=False,
            )
            progress.start()
            task = progress.add_task(label, total=total, rate="")
        speed = progress.tasks[0].speed
        rate = f"{speed:.1f}/s" if speed else ""
        progress.update(task, completed=done, total=total, rate=rate)

    try:
        return fn(update)
    finally:
        if progress is not None:
            progress.stop()


def _warn_skip(source: str, reason: str) -> None:
    err.print(f"[yellow]Warning:[/] skipped {escape(source)}: {escape(reason)}")


def _print_report(report: IngestReport) -> None:
    out.print(escape(report.summary()))
    for line in report.details():
        out.print(f"  {escape(line)}")


@app.command()
def ingest(
    corpus: CorpusOpt = None,
    db: DbOpt = None,
    reset: Annotated[bool, typer.Option("--reset", help="Rebuild the index from scratch.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    rebuild_stale: Annotated[
        bool,
        typer.Option(
            "--rebuild-stale",
            help="Rebuild the index from the corpus when it was made with another embedding "
            "model or an older layout (instead of stopping with a message).",
        ),
    ] = False,
) -> None:
    """Index the corpus folder (only what changed is embedded)."""
    with _command():
        from rag.errors import EmbeddingModelMismatchError, IndexFormatError
        from rag.ingest import ingest as run_ingest

        settings = settings_from(corpus, db)

        def run(reset: bool) -> Any:
            return _with_progress(
                lambda cb: run_ingest(settings, reset=reset, on_skip=_warn_skip, progress=cb),
                "Embedding paragraphs",
            )

        try:
            report = run(reset)
        except (EmbeddingModelMismatchError, IndexFormatError) as exc:
            if not rebuild_stale:
                raise
            err.print(f"[yellow]Warning:[/] {escape(str(exc))}; rebuilding it from the corpus")
            report = run(True)
    if json_out:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report)


@app.command()
def status(
    corpus: CorpusOpt = None,
    db: DbOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show what is indexed and with which embedding model."""
    with _command():
        from rag.status import index_status

        st = index_status(settings_from(corpus, db))
    if json_out:
        out.print_json(json.dumps(st.to_dict()))
        return
    if not st.exists:
        out.print(f"No index at {st.location}. Run `rag ingest`.")
        return
    out.print(f"Index: {st.location} (collection {st.collection})")
    out.print(f"Embedding model: {st.embedding_model}")
    if st.model_mismatch:
        err.print(
            f"[yellow]Warning:[/] settings ask for {st.configured_model!r}; "
            "run `rag ingest --reset` to rebuild with it"
        )
    if not st.current_format:
        err.print("[yellow]Warning:[/] the index is in an older layout; run `rag ingest --reset`")
    out.print(f"{len(st.documents)} documents, {st.chunks} chunks")
    for src, info in st.documents.items():
        out.print(f"  {escape(src)}: {info['paragraphs']} paragraphs, {info['chunks']} chunks")


@app.command()
def doctor(corpus: CorpusOpt = None, db: DbOpt = None) -> None:
    """Check every component for real (one line each, with a measured figure)."""
    with _command():
        from rag.doctor import run_checks

        failed = 0
        for check in run_checks(settings_from(corpus, db)):
            mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
            out.print(f"{mark} {check.name:<9} {escape(check.detail)}")
            failed += not check.ok
    if failed:
        raise fail(f"{failed} component(s) failed; see the FAIL lines above")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many paragraphs.")] = 5,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only these documents (repeatable).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    corpus: CorpusOpt = None,
    db: DbOpt = None,
) -> None:
    """Hybrid (keyword + dense) search: the best paragraphs for QUERY."""
    with _command():
        from rag.retrieval import retrieve

        settings = settings_from(corpus, db)
        passages = retrieve(query, k=k, sources=source, settings=settings)
    if json_out:
        out.print_json(json.dumps([p.to_dict() for p in passages]))
        return
    if not passages:
        out.print("No matching paragraphs.")
    for rank, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        snippet = snippet[:160] + ("…" if len(snippet) > 160 else "")
        section = f" · {escape(p.section)}" if p.section else ""
        out.print(
            f"[bold]{rank}.[/] {escape(paragraph_label(p.source, p.paragraph, p.page))}{section}"
            f"  (score {p.score:.4f})"
        )
        out.print(f"   {escape(snippet)}")


def _print_answer(answer: Any) -> None:
    if answer.standalone_question and answer.standalone_question != answer.question:
        out.print(f"[dim](searched for: {escape(answer.standalone_question)})[/]")
    style = "yellow" if answer.abstained else "bold"
    out.print(f"[{style}]{escape(answer.text)}[/]")
    for c in (*answer.citations, *answer.evidence):
        section = f" · {escape(c.section)}" if c.section else ""
        label = escape(paragraph_label(c.source, c.paragraph, c.page))
        out.print(f"  [{c.marker}] {label}{section}: {escape(quoted(c.quote))}")
    if answer.abstained:
        out.print(f"[dim]({escape(answer.stage)}: {escape(answer.reason)})[/]")
    if answer.outcome == "abstained" and answer.see_also:
        out.print(
            "  See also: "
            + ", ".join(
                escape(paragraph_label(p.source, p.paragraph, p.page)) for p in answer.see_also
            )
        )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    corpus: CorpusOpt = None,
    db: DbOpt = None,
) -> None:
    """Answer QUESTION from the corpus with verified citations (indexes first if needed)."""
    with _command():
        from rag.chain import ask as run_ask
        from rag.ingest import ensure_index
        from rag.retrieval import validate_query

        settings = settings_from(corpus, db)
        validate_query(question, max_chars=settings.retrieval.max_query_chars)
        report = ensure_index(settings, on_skip=_warn_skip)
        if report is not None:
            err.print(escape(report.summary()))
        answer = run_ask(question, settings=settings)
    if json_out:
        out.print_json(json.dumps(answer.to_dict()))
    else:
        _print_answer(answer)


@app.command()
def chat(corpus: CorpusOpt = None, db: DbOpt = None) -> None:
    """An interactive terminal chat that keeps the conversation history."""
    with _command():
        from rag.chain import get_chain
        from rag.ingest import ensure_index

        settings = settings_from(corpus, db)
        ensure_index(settings, on_skip=_warn_skip)
        chain = get_chain(settings)
    history: list[dict[str, str]] = []
    out.print("Ask about the corpus. Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            break
        if not question:
            break
        try:
            answer = chain.invoke(question, history)
        except RagError as exc:
            err.print(f"[bold red]Error:[/] {escape(str(exc))}")
            continue
        _print_answer(answer)
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer.text},
        ]


def _server_settings(
    group: str, host: str | None, port: int | None, corpus: Path | None, db: Path | None
) -> Settings:
    """Settings with --host/--port applied to ``group`` ("ui" or "api"), after indexing the
    corpus if needed (a server starts with a usable index)."""
    from rag.ingest import ensure_index

    settings = settings_from(corpus, db)
    update = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if update:
        section = getattr(settings, group).model_copy(update=update)
        settings = settings.model_copy(update={group: section})
    report = ensure_index(settings, on_skip=_warn_skip)
    if report is not None:
        _print_report(report)
    if settings.chroma_server:
        from rag.replicas import get_sync

        get_sync(settings).refresh()  # this process's keyword index, derived from the server
    return settings


HostOpt = Annotated[str | None, typer.Option("--host", help="Interface (default: 127.0.0.1).")]
UIPortOpt = Annotated[int | None, typer.Option("--port", help="Port (default: 7860).")]
APIPortOpt = Annotated[int | None, typer.Option("--port", help="Port (default: 7861).")]


@app.command()
def ui(
    host: HostOpt = None, port: UIPortOpt = None, corpus: CorpusOpt = None, db: DbOpt = None
) -> None:
    """Start the chat UI (indexes the corpus first if needed) and print its URL."""
    with _command():
        from rag.chain import warm_up_in_background
        from ui.app import launch  # before any indexing: a missing [ui] extra stops here

        settings = _server_settings("ui", host, port, corpus, db)
        warm_up_in_background(settings)
        launch(settings)


@app.command()
def serve(
    host: HostOpt = None, port: APIPortOpt = None, corpus: CorpusOpt = None, db: DbOpt = None
) -> None:
    """Start the HTTP API (REST + OpenAI-compatible; indexes the corpus first if needed)."""
    with _command():
        from api.server import serve as run_server  # first: a missing [api] extra stops early
        from rag.chain import warm_up_in_background

        settings = _server_settings("api", host, port, corpus, db)
        warm_up_in_background(settings)
        run_server(settings)


if __name__ == "__main__":  # pragma: no cover
    app()
