"""Answer latency and memory: this project's chain vs the LangChain-tutorial naive RAG, and vs
itself reading 3 whole paragraphs (``rag-whole``: what it read before the sentence selection).

Both use the same embedder (MiniLM) and the same chat model (Qwen2.5-Coder-1.5B on llama.cpp,
temperature 0) over the seed corpus (``corpus/``). Each system runs in its own subprocess (so
peak RSS is its own), one after the other, on the same questions:

* time to first token (TTFT): question in -> first streamed model token (this project: the
  first ``draft`` event of ``get_chain(settings).stream``; it also retrieves, and abstains
  without calling the model when the best paragraph is too dissimilar: no TTFT then);
* total: question in -> final answer (this project: the verified ``final`` event);
* sources shown (this project only): question in -> the ``passages`` event, i.e. the first
  visible progress with content (the UI lists the paragraphs it found before the model reads
  them; the naive chain shows nothing until its first token);
* tokens/s: streamed chunks after the first / (total - TTFT) (llama.cpp streams one token per
  chunk);
* prompt tokens per answer (this project: ``Timings.prompt_tokens``);
* peak RSS of the process (models + index + everything).

Questions: 10 from evals/questions.jsonl (7 answerable incl. paraphrase and multi-paragraph,
3 unanswerable), or ``--all`` for every single-turn question. Per-question outputs go to
bench/out/answers_<system>.json (bench/quality.py scores them).

    python bench/answers.py [--all] [--systems rag rag-whole naive]
    python bench/answers.py --squad 3     # the 9 SQuAD dev articles, 3 questions each

With ``--squad N`` the corpus is the 9 SQuAD development articles and the questions are the
``evals squad`` sample (N per article, answerable and unanswerable); outputs get a ``_squad``
suffix and ``python bench/quality.py --squad`` scores them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    MODELS_DIR,
    OUT,
    ROOT,
    SEED_CORPUS,
    RssSampler,
    peak_rss_mb,
    summary,
    table,
    write_json,
)

QUESTIONS = ROOT / "evals" / "questions.jsonl"
DEFAULT_IDS = [
    "fact-01",
    "fact-02",
    "fact-03",
    "para-01",
    "para-03",
    "para-05",
    "multi-01",
    "unans-01",
    "unans-04",
    "outside-01",
]
FALLBACK = [  # used only when evals/questions.jsonl is missing
    {
        "id": "fact-01",
        "question": "Which institution is Dr. Tenzin Wangchuk affiliated with?",
        "answerable": True,
        "answers": ["Kathmandu Policy Forum"],
        "evidence": ["at the Kathmandu Policy Forum"],
    },
    {
        "id": "fact-02",
        "question": "Where was the Joint Communiqué between Bhutan and Qatar signed?",
        "answerable": True,
        "answers": ["New York"],
        "evidence": ["Joint Communiqué in New York"],
    },
    {
        "id": "fact-03",
        "question": "In what year did Bhutan gain its independence?",
        "answerable": True,
        "answers": ["1949"],
        "evidence": ["independence in 1949"],
    },
    {
        "id": "fact-04",
        "question": "Which organization is Dr. Ahmed Al-Thani an analyst at?",
        "answerable": True,
        "answers": ["Brookings Doha Center"],
        "evidence": ["analyst at the Brookings Doha Center"],
    },
    {
        "id": "fact-05",
        "question": (
            "What did Qatar's technical assistance to Bhutan's border security forces focus on?"
        ),
        "answerable": True,
        "answers": ["surveillance"],
        "evidence": ["focusing on surveillance and monitoring technologies"],
    },
    {
        "id": "fact-06",
        "question": "Which conference of the Non-Aligned Movement did Bhutan participate in?",
        "answerable": True,
        "answers": ["Mid-Term Ministerial Conference"],
        "evidence": ["19th Mid-Term Ministerial Conference"],
    },
    {
        "id": "fact-07",
        "question": (
            "In which sectors are trade and investment between Bhutan and Qatar expected to "
            "increase?"
        ),
        "answerable": True,
        "answers": ["renewable energy"],
        "evidence": ["renewable energy and technology"],
    },
    {
        "id": "unans-01",
        "question": "What is the population of Bhutan?",
        "answerable": False,
        "answers": [],
        "evidence": [],
    },
    {
        "id": "unans-04",
        "question": "How much money has Qatar invested in Bhutan so far?",
        "answerable": False,
        "answers": [],
        "evidence": [],
    },
    {
        "id": "outside-01",
        "question": "What is the capital of Qatar?",
        "answerable": False,
        "answers": [],
        "evidence": [],
    },
]


def load_questions(all_questions: bool, path: Path | None = None) -> list[dict[str, Any]]:
    if path is not None:  # another question file (e.g. the SQuAD sample): every question
        all_questions = True
    path = path or QUESTIONS
    if not path.exists():
        return FALLBACK
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rows = [r for r in rows if not r.get("history")]
    if all_questions:
        return rows
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in DEFAULT_IDS if i in by_id]


N_THREADS = 2
CORPUS = SEED_CORPUS


def squad_sample(per_article: int) -> tuple[Path, Path]:
    """The 9 SQuAD development articles as a corpus + question file (as `evals squad` makes
    them: ``per_article`` questions per article, answerable and unanswerable, seed 0)."""
    from common import SQUAD_DEV

    from evals.squad import convert

    corpus, qpath, _ = convert(SQUAD_DEV, OUT / "squad", per_article=per_article, seed=0)
    return corpus, qpath


def settings_for(tmp: Path) -> Any:
    from rag.settings import Settings

    # A generous generation timeout: on a loaded 2-core machine the default 90 s is too short
    # and would turn slow answers into abstentions. Other RAG_LLM__* variables still apply.
    s = Settings(corpus_dir=CORPUS, data_dir=tmp / "data", db_dir=tmp / "db", models_dir=MODELS_DIR)
    s.llm = s.llm.model_copy(update={"timeout_s": 900.0, "n_threads": N_THREADS})
    return s


def run_rag(
    questions: list[dict[str, Any]], tmp: Path, whole: bool = False
) -> list[dict[str, Any]]:
    from rag.chain import get_chain
    from rag.ingest import ingest

    settings = settings_for(tmp)
    if whole:  # the reading this replaced: the best 3 paragraphs whole, in retrieval order
        update = {"max_context_passages": 3, "context_tokens": 1_000_000}
        settings.llm = settings.llm.model_copy(update=update)
    ingest(settings)
    chain = get_chain(settings)
    _ = chain.llm  # load the model before timing (both systems do)
    chain.warm_up()  # the fixed prompt parts, read at start as the UI and the API server do
    chain.retriever.search("warm up", k=1)
    out = []
    for q in questions:
        t0 = time.perf_counter()
        first = None
        progress = None
        n_tok = 0
        answer = None
        for ev in chain.stream(q["question"]):
            if ev.kind == "passages" and progress is None:
                progress = time.perf_counter() - t0
            if ev.kind == "draft":
                n_tok += 1
                if first is None:
                    first = time.perf_counter() - t0
            elif ev.kind == "final":
                answer = ev.answer
        total = time.perf_counter() - t0
        assert answer is not None
        d = answer.to_dict()
        out.append(
            {
                "id": q["id"],
                "answer": d["answer"],
                "abstained": answer.abstained,
                "reason": answer.reason,
                "citations": d["citations"],
                "retrieved_texts": [p.text for p in answer.passages],
                "first_token_s": first,
                "sources_shown_s": progress,
                "total_s": total,
                "n_tokens": n_tok,
                "raw_output": answer.raw_output,
                "verification_s": answer.timings.verification,
                "prompt_tokens": answer.timings.prompt_tokens,
            }
        )
        print(f"rag   {q['id']:<10} {total:6.1f}s  {d['answer'][:90]!r}", file=sys.stderr)
    return out


def run_naive(questions: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    from naive import NaiveRAG, says_dont_know

    settings = settings_for(tmp)
    naive = NaiveRAG(settings, persist_directory=tmp / "naive-db")
    naive.index()
    _ = naive.llm  # load the model before timing
    naive.retrieve("warm up")
    out = []
    for q in questions:
        res = naive.invoke(q["question"])
        abstained = says_dont_know(res.answer)
        out.append(
            {
                "id": q["id"],
                "answer": res.answer,
                "abstained": abstained,
                "reason": "",
                "citations": [] if abstained else naive.sources(res),
                "retrieved_texts": [d.page_content for d in res.docs],
                "first_token_s": res.timings["first_token"],
                "total_s": res.timings["total"],
                "n_tokens": res.n_tokens,
                "raw_output": res.answer,
            }
        )
        print(
            f"naive {q['id']:<10} {res.timings['total']:6.1f}s  {res.answer[:90]!r}",
            file=sys.stderr,
        )
    return out


SYSTEMS = ["rag", "rag-whole", "naive"]
NAMES = {
    "rag": "this project",
    "rag-whole": "this project, reading 3 whole paragraphs",
    "naive": "naive (LangChain tutorial)",
}


def tokens_per_s(r: dict[str, Any]) -> float | None:
    if r["first_token_s"] is None or r["n_tokens"] < 2:
        return None
    gen = r["total_s"] - r["first_token_s"]
    return (r["n_tokens"] - 1) / gen if gen > 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--all", action="store_true", help="every single-turn question in evals/questions.jsonl"
    )
    ap.add_argument("--systems", nargs="*", default=SYSTEMS, choices=SYSTEMS)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (RAG_LLM__N_THREADS)")
    ap.add_argument("--ids", nargs="*", help="question ids from evals/questions.jsonl")
    ap.add_argument(
        "--squad",
        type=int,
        metavar="N",
        help="instead of the seed corpus: the 9 SQuAD dev articles, N questions per article",
    )
    ap.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--questions", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global N_THREADS, CORPUS
    N_THREADS = args.threads
    if args.squad and not args.one:
        args.corpus, args.questions = squad_sample(args.squad)
    CORPUS = args.corpus or SEED_CORPUS
    tag = "_squad" if args.questions else ""
    questions = load_questions(args.all, args.questions)
    if args.ids:
        questions = [q for q in questions if q["id"] in args.ids]
    passthrough = (
        ["--threads", str(args.threads)]
        + (["--all"] if args.all else [])
        + (["--ids", *args.ids] if args.ids else [])
        + (["--corpus", str(args.corpus), "--questions", str(args.questions)] if tag else [])
    )

    if args.one:
        with tempfile.TemporaryDirectory(prefix=f"bench-answers-{args.one}-") as tmp:
            with RssSampler() as rss:
                if args.one == "naive":
                    rows = run_naive(questions, Path(tmp))
                else:
                    rows = run_rag(questions, Path(tmp), whole=args.one == "rag-whole")
        OUT.mkdir(parents=True, exist_ok=True)
        payload = {
            "system": args.one,
            "corpus": str(CORPUS),
            "questions_file": str(args.questions or QUESTIONS),
            "questions": [q["id"] for q in questions],
            "results": rows,
            "peak_rss_mb": max(rss.peak, peak_rss_mb()),
        }
        (OUT / f"answers_{args.one}{tag}.json").write_text(
            json.dumps(payload, indent=2) + "\n", encoding="utf-8"
        )
        return

    summaries = {}
    for system in args.systems:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(Path(__file__)), "--one", system, *passthrough], cwd=ROOT
        )
        if proc.returncode != 0:
            raise SystemExit(f"{system} failed")
        data = json.loads((OUT / f"answers_{system}{tag}.json").read_text())
        rows = data["results"]
        ttft = [r["first_token_s"] for r in rows if r["first_token_s"] is not None]
        total = [r["total_s"] for r in rows]
        tps = [t for t in (tokens_per_s(r) for r in rows) if t is not None]
        shown = [r["sources_shown_s"] for r in rows if r.get("sources_shown_s") is not None]
        summaries[system] = {
            "sources_shown_s": summary(shown) if shown else None,
            "questions": len(rows),
            "ttft_s": summary(ttft),
            "total_s": summary(total),
            "tokens_per_s": summary(tps),
            "tokens_mean": sum(r["n_tokens"] for r in rows) / len(rows),
            "model_calls": sum(1 for r in rows if r["first_token_s"] is not None),
            "peak_rss_mb": data["peak_rss_mb"],
            "wall_s": time.perf_counter() - t0,
        }
        prompt = [r["prompt_tokens"] for r in rows if r.get("prompt_tokens") is not None]
        if prompt:
            summaries[system]["prompt_tokens"] = summary(prompt)
        checks = [r["verification_s"] for r in rows if r.get("verification_s") is not None]
        if checks:
            summaries[system]["verification_s"] = summary(checks)
            summaries[system]["verification_share"] = sum(checks) / max(1e-9, sum(total))
    header = [
        "system",
        "questions",
        "LLM calls",
        "TTFT p50 s",
        "TTFT p95 s",
        "total p50 s",
        "total p95 s",
        "tokens/answer",
        "tokens/s p50",
        "peak RSS MB",
    ]
    trows = []
    for system, s in summaries.items():
        trows.append(
            (
                NAMES[system],
                s["questions"],
                s["model_calls"],
                s["ttft_s"]["p50"],
                s["ttft_s"]["p95"],
                s["total_s"]["p50"],
                s["total_s"]["p95"],
                s["tokens_mean"],
                s["tokens_per_s"]["p50"],
                s["peak_rss_mb"],
            )
        )
    print(table(trows, header))
    for system, s in summaries.items():
        if s["sources_shown_s"]:
            shown = s["sources_shown_s"]
            print(
                f"{system}: first visible progress (paragraphs found) "
                f"p50 {shown['p50']:.2f} s, p95 {shown['p95']:.2f} s"
            )
    for system, s in summaries.items():
        if "prompt_tokens" in s:
            pt = s["prompt_tokens"]
            print(f"{system}: prompt tokens per answer p50 {pt['p50']:.0f}, mean {pt['mean']:.0f}")
    for system, s in summaries.items():
        if "verification_s" in s:
            v = s["verification_s"]
            print(
                f"{system}: checking statements p50 {v['p50']:.2f} s, p95 {v['p95']:.2f} s, "
                f"{100 * s['verification_share']:.0f}% of all answer time"
            )
    print(f"llama.cpp threads: {args.threads}")
    print(
        "wrote",
        write_json(
            "answers" + tag,
            {
                "summary": summaries,
                "questions": [q["id"] for q in questions],
                "llm_threads": args.threads,
            },
        ),
    )


if __name__ == "__main__":
    main()
