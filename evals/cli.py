"""The ``evals`` command: run the evaluation suites, gate on thresholds, manage the baseline,
compare runs, test a verifier on the labelled faithfulness set, generate starter questions.

Exit codes: 0 all gates passed; 1 a gate failed (metric below threshold, drop from baseline,
malformed question lines); 2 the run could not be done (bad input, missing index or model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from evals.runner import DEFAULT_BASELINE, DEFAULT_QUESTIONS, DEFAULT_THRESHOLDS, RunResult
from rag.errors import RagError
from rag.settings import Settings
from rag_cli.common import err, fail, new_app, out, quiet_libraries, settings_from

app = new_app(
    "Evaluate the answer chain: retrieval, correctness, citations, faithfulness, abstention."
)

QuestionsOpt = Annotated[Path, typer.Option("--questions", help="Question file (JSONL).")]
CorpusOpt = Annotated[
    Path | None, typer.Option("--corpus", help="Corpus folder (default: ./corpus).")
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="Index folder (default: ./data/chroma).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions.")]
SampleOpt = Annotated[
    int | None,
    typer.Option(
        "--sample", min=1, help="Only N questions spread over the categories (fixed seed)."
    ),
]
ThresholdsOpt = Annotated[
    Path, typer.Option("--thresholds", help="Gate minimums/maximums per suite.")
]
BaselineOpt = Annotated[Path, typer.Option("--baseline", help="Baseline metrics per suite.")]
SelfJudgeOpt = Annotated[
    bool,
    typer.Option(
        "--self-judge/--no-self-judge",
        help="Also let the chain's own model judge its statements (reported as self_judge, "
        "never as independent; about doubles the run time). Off by default.",
    ),
]
JudgeUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--judge-url",
        envvar="EVALS_JUDGE_URL",
        help="OpenAI-compatible endpoint of an external LLM judge (reported as llm_judge).",
    ),
]
JudgeModelOpt = Annotated[
    str | None,
    typer.Option("--judge-model", envvar="EVALS_JUDGE_MODEL", help="Model name at --judge-url."),
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
# accepted so that older scripts keep working: no LLM judge runs unless asked for
NoLLMJudgeOpt = Annotated[bool, typer.Option("--no-llm-judge", hidden=True)]


def _fail(message: str) -> typer.Exit:
    return fail(message, 2)  # 2: the run could not be done


def _settings(corpus: Path | None, db: Path | None) -> Settings:
    try:
        return settings_from(corpus, db)
    except RagError as exc:
        raise _fail(str(exc)) from None


def _judges(self_judge: bool, settings: Any, url: str | None, model: str | None) -> list[Any]:
    """The LLM judges asked for: an external one (``--judge-url``) and/or the self-judge."""
    from evals.judge import LLMJudge

    judges: list[Any] = []
    if url:
        judges.append(LLMJudge.external(url, model, os.environ.get("EVALS_JUDGE_API_KEY")))
    if self_judge:
        judges.append(LLMJudge.self_judge(settings))
    return judges


def _report(result: RunResult) -> None:
    """Print the run's summary; exit 1 if a gate failed."""
    _print_summary(result)
    if not result.passed:
        raise typer.Exit(1)


def _print_gates(failed: Iterable[str], written: str, passed: bool) -> None:
    """The failed gates (on stderr), where the reports are, then the verdict."""
    for message in failed:
        err.print(f"[bold red]GATE FAILED[/] {escape(message)}")
    out.print(written)
    out.print("[bold green]All gates passed.[/]" if passed else "[bold red]Gates failed.[/]")


def _print_summary(result: RunResult) -> None:
    rep = result.report
    from evals.report import fmt_ci

    table = Table(title=f"{rep['suite']}: {rep['n_questions']} questions", show_lines=False)
    for col in ("metric", "value", "95% interval", "n", "judge", "baseline"):
        table.add_column(col, justify="right" if col in ("value", "n", "baseline") else "left")
    base = rep.get("baseline") or {}
    for name, m in rep["metrics"].items():
        v = m["value"]
        b = base.get(name)
        judge = str(m["judge"]) + ("" if m.get("independent", True) else " (not independent)")
        table.add_row(
            name,
            "n/a" if v is None else f"{v:.3f}",
            fmt_ci(m),
            str(m["n"]),
            escape(judge),
            "" if b is None else f"{b:.3f}",
        )
    out.print(table)
    res = rep.get("resources") or {}
    if res:
        out.print(
            f"Time {res['seconds_total']} s ({res['seconds_answering']} s answering, ratio "
            f"{res['overhead_ratio']}); peak memory {res['peak_rss_mb']} MB"
        )
    where = escape(str(result.out_dir))
    written = f"Reports in {where}: report.md, report.json, predictions.jsonl, *.png"
    _print_gates((g.message for g in result.gates if not g.passed), written, result.passed)


def _run(
    questions_path: Path,
    settings: Any,
    out_dir: Path,
    *,
    suite: str,
    limit: int | None,
    thresholds: Path,
    sample: int | None = None,
    baseline: Path,
    self_judge: bool,
    judge_url: str | None,
    judge_model: str | None,
    progress: bool,
) -> RunResult:
    from evals.dataset import load_questions, select_questions
    from evals.runner import run_suite

    if not questions_path.is_file():
        raise _fail(f"no question file at {questions_path}")
    questions, errors = load_questions(questions_path)
    for e in errors:
        err.print(f"[yellow]Warning:[/] {escape(str(questions_path))} {escape(str(e))} (skipped)")
    n_all = len(questions)
    questions = select_questions(questions, sample=sample, limit=limit)
    if len(questions) < n_all:
        err.print(f"[yellow]Note:[/] running {len(questions)} of {n_all} questions")
    if not questions:
        raise _fail("no valid questions to run")
    import signal

    def _stop(signum: int, frame: Any) -> None:  # SIGTERM: stop like Ctrl-C, keep the report
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        judges = _judges(self_judge, settings, judge_url, judge_model)
        return run_suite(
            questions,
            settings,
            out_dir,
            suite=suite,
            questions_file=str(questions_path),
            question_errors=errors,
            subset=f"{len(questions)} of {n_all} questions" if len(questions) < n_all else "",
            thresholds_path=thresholds,
            baseline_path=baseline,
            llm_judges=judges,
            progress=progress,
        )
    except RagError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    questions: QuestionsOpt = DEFAULT_QUESTIONS,
    corpus: CorpusOpt = None,
    db: DbOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("evals/out"),
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    suite: Annotated[
        str, typer.Option("--suite", help="Section of thresholds/baseline to use.")
    ] = "fixed",
    thresholds: ThresholdsOpt = DEFAULT_THRESHOLDS,
    baseline: BaselineOpt = DEFAULT_BASELINE,
    eval_docs: Annotated[
        bool,
        typer.Option(
            "--eval-docs/--no-eval-docs",
            help="Add the evaluation documents of evals/docs (HTML, PDF) to the corpus.",
        ),
    ] = True,
    self_judge: SelfJudgeOpt = False,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    progress: ProgressOpt = True,
    no_llm_judge: NoLLMJudgeOpt = False,
) -> None:
    """Run the question file through the real chain; write the report; exit 1 if a gate fails.

    The run indexes its own corpus: --corpus plus evals/docs, copied to OUT/corpus, indexed in
    --db (default OUT/db), so the app's index is never touched.
    """
    quiet_libraries()
    from evals.corpus import assemble, eval_documents

    try:
        run_corpus = assemble(
            corpus or Path("corpus"), out_dir / "corpus", eval_documents() if eval_docs else ()
        )
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    settings = _settings(run_corpus, db or out_dir / "db")
    result = _run(
        questions,
        settings,
        out_dir,
        suite=suite,
        limit=limit,
        sample=sample,
        thresholds=thresholds,
        baseline=baseline,
        self_judge=self_judge,
        judge_url=judge_url,
        judge_model=judge_model,
        progress=progress,
    )
    _report(result)


@app.command("baseline")
def baseline_cmd(
    from_report: Annotated[Path, typer.Option("--from", help="A report.json to record.")] = Path(
        "evals/out/report.json"
    ),
    baseline: BaselineOpt = DEFAULT_BASELINE,
) -> None:
    """Record a run's metrics as the new baseline of its suite (on purpose, after review)."""
    from evals.gates import load_json, update_baseline

    if not from_report.is_file():
        raise _fail(f"no report at {from_report}; run `evals run` first")
    report = load_json(from_report)
    if report.get("subset"):
        err.print("[yellow]Warning:[/] this report covers only part of the question file")
    update_baseline(baseline, report, source=str(from_report))
    out.print(f"Baseline for suite {report.get('suite', 'fixed')!r} updated in {baseline}")


@app.command()
def judge(
    out_dir: Annotated[Path, typer.Option("--out", help="The folder of an earlier run.")] = Path(
        "evals/out"
    ),
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="Question file (default: the one the run used)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Judge only the first N statements.")
    ] = None,
    self_judge: SelfJudgeOpt = False,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    corpus: CorpusOpt = None,
    db: DbOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """LLM-judge the statements of an earlier run (--judge-url and/or --self-judge); re-gate."""
    quiet_libraries()
    from evals.dataset import load_questions
    from evals.runner import judge_run

    if not (out_dir / "report.json").is_file():
        raise _fail(f"no report.json in {out_dir}; run `evals run` first")
    qs = None
    if questions is not None:
        qs, _errors = load_questions(questions)
    settings = _settings(corpus, db)
    if not (judge_url or self_judge):
        raise _fail("say which judge: --judge-url URL (llm_judge) or --self-judge")
    try:
        for j in _judges(self_judge, settings, judge_url, judge_model):
            result = judge_run(out_dir, j, questions=qs, limit=limit, progress=progress)
    except RagError as exc:
        raise _fail(str(exc)) from None
    _report(result)


@app.command()
def score(
    predictions: Annotated[
        list[Path], typer.Argument(help="predictions.jsonl file(s); a later file wins per id.")
    ],
    questions: QuestionsOpt = DEFAULT_QUESTIONS,
    corpus: Annotated[
        Path | None,
        typer.Option("--corpus", help="Corpus of the run (default: the run's OUT/corpus)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("evals/out"),
    suite: Annotated[
        str, typer.Option("--suite", help="Section of thresholds/baseline.")
    ] = "fixed",
    thresholds: ThresholdsOpt = DEFAULT_THRESHOLDS,
    baseline: BaselineOpt = DEFAULT_BASELINE,
) -> None:
    """Score saved predictions again (e.g. after a metric change, or merged partial runs)."""
    from evals.dataset import load_questions
    from evals.runner import read_predictions, score_predictions

    qs, errors = load_questions(questions)
    for path in predictions:
        if not path.is_file():
            raise _fail(f"no predictions file at {path}")
    rows = read_predictions(*predictions)
    if corpus is None and (predictions[-1].parent / "corpus").is_dir():
        corpus = predictions[-1].parent / "corpus"  # the corpus that run indexed
    settings = _settings(corpus, None)
    result = score_predictions(
        qs,
        list(rows.values()),
        settings,
        out_dir,
        suite=suite,
        questions_file=str(questions),
        thresholds_path=thresholds,
        baseline_path=baseline,
    )
    missing = [q.id for q in qs if q.id not in rows]
    if missing:
        err.print(f"[yellow]Warning:[/] no prediction for {len(missing)} question(s)")
    _print_summary(result)
    if not result.passed or missing or errors:
        raise typer.Exit(1)


@app.command()
def validate(questions: QuestionsOpt = DEFAULT_QUESTIONS, corpus: CorpusOpt = None) -> None:
    """Check a question file: schema per line, and that every evidence string is in the corpus."""
    from evals.dataset import load_questions, missing_evidence
    from rag.loading import load_corpus

    qs, errors = load_questions(questions)
    for e in errors:
        err.print(f"{escape(str(questions))} {escape(str(e))}")
    docs = load_corpus(corpus or Path("corpus"))
    missing = missing_evidence(qs, [d.text for d in docs])
    for qid, ev in missing:
        err.print(f"{escape(qid)}: evidence not in the corpus: {escape(ev[:80])!r}")
    out.print(
        f"{len(qs)} valid questions, {len(errors)} malformed lines, {len(missing)} missing evidence"
    )
    if errors or missing:
        raise typer.Exit(1)


def _parse_articles(articles: str | None) -> list[str]:
    from evals.squad import DEFAULT_ARTICLES

    if not articles:
        return list(DEFAULT_ARTICLES)
    return [a.strip() for a in articles.split(",") if a.strip()]


SquadPathArg = Annotated[
    Path | None,
    typer.Argument(help="SQuAD 2.0 JSON (default: ../shared/data/squad-v2-dev/dev-v2.0.json)."),
]
ArticlesOpt = Annotated[
    str | None,
    typer.Option(
        "--articles", help="Comma-separated article titles (default: the 9 dev articles)."
    ),
]


def _squad_path(path: Path | None) -> Path:
    from evals.squad import default_squad_path

    p = path or default_squad_path()
    if not p.is_file():
        raise _fail(f"no SQuAD file at {p}")
    return p


@app.command()
def squad(
    path: SquadPathArg = None,
    articles: ArticlesOpt = None,
    per_article: Annotated[
        int, typer.Option("--per-article", min=1, help="Questions per article.")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder (corpus, db, reports).")
    ] = Path("evals/out/squad"),
    limit: LimitOpt = None,
    thresholds: ThresholdsOpt = DEFAULT_THRESHOLDS,
    baseline: BaselineOpt = DEFAULT_BASELINE,
    self_judge: SelfJudgeOpt = False,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    progress: ProgressOpt = True,
    no_llm_judge: NoLLMJudgeOpt = False,
) -> None:
    """Convert SQuAD 2.0 articles to a corpus + question file, ingest them, run the suite."""
    quiet_libraries()
    from evals.squad import convert

    src = _squad_path(path)
    try:
        corpus, qpath, sample = convert(
            src, out_dir, articles=_parse_articles(articles), per_article=per_article, seed=seed
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    n_ans = sum(1 for g in sample if g.question.answerable)
    out.print(f"SQuAD sample: {len(sample)} questions ({n_ans} answerable) from {corpus}")
    settings = _settings(corpus, out_dir / "db")
    result = _run(
        qpath,
        settings,
        out_dir,
        suite="squad",
        limit=limit,
        thresholds=thresholds,
        baseline=baseline,
        self_judge=self_judge,
        judge_url=judge_url,
        judge_model=judge_model,
        progress=progress,
    )
    _report(result)


@app.command()
def retrieval(
    path: SquadPathArg = None,
    articles: ArticlesOpt = None,
    per_article: Annotated[
        int | None,
        typer.Option(
            "--per-article", min=1, help="Answerable questions per article (default: all)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder (corpus, db, tables).")
    ] = Path("evals/out/squad"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Gold-paragraph recall@1, recall@5 and MRR@10 for dense, BM25 and hybrid retrieval."""
    quiet_libraries()
    from tqdm import tqdm

    from evals.retrieval_eval import (
        render_table,
        run_squad_retrieval,
        squad_gold,
        write_retrieval_report,
    )

    src = _squad_path(path)
    try:
        corpus, arts, gold = squad_gold(
            src, out_dir, articles=_parse_articles(articles), per_article=per_article, seed=seed
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    settings = _settings(corpus, out_dir / "db")
    try:
        with tqdm(total=len(gold), desc="retrieval", unit="q", disable=json_out) as bar:
            result = run_squad_retrieval(
                settings,
                arts,
                gold,
                on_indexed=lambda rep: err.print(escape(rep.summary())),
                on_progress=lambda i, n: bar.update(1),
            )
    except RagError as exc:
        raise _fail(str(exc)) from None
    md = write_retrieval_report(result, out_dir)
    if json_out:
        out.print_json(
            json.dumps({k: result[k] for k in ("n_questions", "candidates", "table", "articles")})
        )
    else:
        out.print(render_table(result))
        out.print(f"Written {md} and retrieval.json")


@app.command()
def faithfulness(
    verifier: Annotated[
        str,
        typer.Option(
            "--verifier",
            help="rag.verification verifier (lexical, llm, default) or evals-judge (the "
            "evals' own deterministic judge).",
        ),
    ] = "default",
    cases: Annotated[
        Path | None, typer.Option("--set", help="Labelled set (default evals/faithfulness.jsonl).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path(
        "evals/out/faithfulness"
    ),
    thresholds: ThresholdsOpt = DEFAULT_THRESHOLDS,
) -> None:
    """Run a statement verifier on the labelled faithfulness set; per-kind results; gates."""
    quiet_libraries()
    from evals.faithfulness import DEFAULT_SET, FaithfulnessError, run_suite
    from evals.gates import load_json
    from evals.report import fmt_ci

    try:
        report = run_suite(
            verifier,
            set_path=cases or DEFAULT_SET,
            out_dir=out_dir,
            thresholds=load_json(thresholds).get("faithfulness", {}),
        )
    except (FaithfulnessError, RagError) as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"faithfulness: verifier {verifier}, {report['n_cases']} cases")
    for col in ("metric", "value", "95% interval (Wilson)", "n"):
        table.add_column(col)
    for name, m in report["metrics"].items():
        v = m["value"]
        table.add_row(name, "n/a" if v is None else f"{v:.3f}", fmt_ci(m), str(m["n"]))
    out.print(table)
    failed = (g["message"] for g in report["gates"] if not g["passed"])
    written = f"Written {out_dir / 'faithfulness.md'} and faithfulness.json"
    _print_gates(failed, written, report["passed"])
    if not report["passed"]:
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="Run A (before): its folder or report.json.")],
    run_b: Annotated[Path, typer.Argument(help="Run B (after): its folder or report.json.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the comparison here (.md; .json too).")
    ] = None,
) -> None:
    """Metric deltas B - A with paired-bootstrap intervals; questions that flipped, side by side."""
    from evals.compare import CompareError, compare, render_markdown, write_comparison

    try:
        c = compare(run_a, run_b)
    except CompareError as exc:
        raise _fail(str(exc)) from None
    if out_file is not None:
        write_comparison(c, out_file)
    out.print(render_markdown(c), markup=False)


@app.command()
def generate(
    corpus: Annotated[
        Path, typer.Option("--corpus", help="The corpus folder to write questions for.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The question file to write (JSONL).")],
    db: Annotated[
        Path | None, typer.Option("--db", help="Index folder (default: next to --out).")
    ] = None,
    paragraphs: Annotated[
        int, typer.Option("--paragraphs", min=1, help="Paragraphs to sample (one question each).")
    ] = 12,
    unanswerable: Annotated[
        int, typer.Option("--unanswerable", min=0, help="Unanswerable questions to try.")
    ] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    progress: ProgressOpt = True,
) -> None:
    """Write a starter question file for any corpus (model-written, machine-checked,
    every line marked generated: true for review)."""
    quiet_libraries()
    from evals.generate import generate_questions, model_and_retrieval, write_generated
    from rag.ingest import ingest
    from rag.loading import load_corpus
    from rag.paragraphs import split_paragraphs

    if not corpus.is_dir():
        raise _fail(f"no corpus folder at {corpus}")
    settings = _settings(corpus, db or out_file.parent / f"{out_file.stem}-db")
    try:
        ingest(settings)
        paras = [p for d in load_corpus(corpus) for p in split_paragraphs(d)]
        if not paras:
            raise _fail(f"no readable paragraphs in {corpus}")
        ask, find = model_and_retrieval(settings)
        from tqdm import tqdm

        def save(qs: list[Any], stats: Any) -> None:
            write_generated(out_file, qs, stats)

        total = min(paragraphs, len(paras)) + min(unanswerable, paragraphs)
        with tqdm(total=total, desc="generate", unit="q", disable=not progress) as bar:
            qs, stats = generate_questions(
                paras,
                ask,
                find,
                n_paragraphs=paragraphs,
                n_unanswerable=unanswerable,
                seed=seed,
                on_progress=lambda: bar.update(1),
                sink=save,
            )
    except RagError as exc:
        raise _fail(str(exc)) from None
    save(qs, stats)
    kept, written = stats.kept, stats.written
    out.print(
        f"{stats.paragraphs} paragraphs: answerable {kept['answerable']}/"
        f"{written['answerable']} kept, unanswerable {kept['unanswerable']}/"
        f"{written['unanswerable']} kept -> {out_file}"
    )
    for why, n in sorted(stats.dropped.items()):
        out.print(f"  dropped {n}: {why}")


if __name__ == "__main__":  # pragma: no cover
    app()
