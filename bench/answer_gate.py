"""Fit the answer gate (rag/verification/answer_gate.json) on the 9 SQuAD 2.0 development
articles: does a statement the model wrote, located in a source sentence, answer the question?

    .venv/bin/python bench/answer_gate.py collect --per-article 70 --seed 1   # the real chain
    .venv/bin/python bench/answer_gate.py rescore    # after a change of the answer check only
    .venv/bin/python bench/answer_gate.py fit --features logit_answers inv_rank
    .venv/bin/python bench/answer_gate.py pick-collect --top 3   # the reader's best sentences
    .venv/bin/python bench/answer_gate.py pick-fit
    .venv/bin/python bench/answer_gate.py hidden     # the model's hidden state as a signal
    .venv/bin/python bench/answer_gate.py content-free   # the check's prior on "N/A"

``collect`` indexes the articles, and for each sampled question runs the real retriever and
the packaged model's answer (the shipped prompt), grounds each statement in its source
sentence as the chain does, and records the gate's features of that sentence and whether the
gold answer is in it (bench/data/answer_gate_signals.jsonl; resumable, committed).
``fit`` fits a logistic regression, measures it out of fold by leaving one article out at a
time, chooses the threshold on the out-of-fold scores for the stated share of unanswerable
questions answered, refits on all rows and writes the gate file with those measurements.
The fixed suite (evals/questions.jsonl) is never used here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    ROOT,
    answer_in,
    fit_logistic,
    squad_dev_index,
    write_logistic,
)

from evals.squad import all_questions

SIGNALS = ROOT / "bench" / "data" / "answer_gate_signals.jsonl"


def _index() -> tuple[list[dict[str, Any]], Any]:
    """The 9 development articles, indexed in bench/out: (the articles, the shipped settings
    with a 600 s model timeout)."""
    arts, settings = squad_dev_index(OUT / "answer-gate-squad")
    settings.llm = settings.llm.model_copy(update={"timeout_s": 600.0})
    return arts, settings


def _chain(settings: Any) -> Any:
    from rag.chain import AnswerChain

    return AnswerChain(settings=settings)


def collect(per_article: int, seed: int) -> None:
    arts, settings = _index()
    rng = random.Random(seed)
    every = all_questions(arts)
    picked = []
    for art in arts:
        mine = [g for g in every if g.question.category.split(":")[1] == art["title"]]
        ans = [g for g in mine if g.question.answerable]
        unans = [g for g in mine if not g.question.answerable]
        half = per_article // 2
        picked += rng.sample(ans, min(half, len(ans))) + rng.sample(unans, min(half, len(unans)))
    by_article: dict[str, list[Any]] = defaultdict(list)
    for g in picked:
        by_article[g.question.category].append(g)
    lists = list(by_article.values())
    picked = [lst[i] for i in range(max(map(len, lists))) for lst in lists if i < len(lst)]
    SIGNALS.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if SIGNALS.exists():
        done = {json.loads(line)["id"] for line in SIGNALS.read_text().splitlines() if line}
    chain = _chain(settings)
    t0 = time.perf_counter()
    todo = [g for g in picked if g.question.id not in done]
    with SIGNALS.open("a", encoding="utf-8") as out:
        for n, g in enumerate(todo, start=1):
            q = g.question
            t = time.perf_counter()
            # The shipped chain's steps: retrieve, select, read, check (with the gate's signals
            # of every statement grounded in a sentence).
            excerpts = chain.excerpts(q.question, chain.retrieve(q.question))
            reading = _read(chain, q.question, excerpts)
            raw = reading.output
            wanted = chain.retriever.distinctive_terms(q.question)
            checked = chain.checker.check(
                raw, excerpts, q.question, wanted, written=reading.written, pick=False
            )
            rows = [
                {
                    "signals": j.signals,
                    "statement": j.claim.statement,
                    "sentence": j.claim.quote,
                    "gold_in_sentence": q.answerable and answer_in(j.claim.quote, q.answers),
                    "gold_in_statement": q.answerable and answer_in(j.claim.statement, q.answers),
                    "gold_paragraph": (j.claim.passage.source, j.claim.passage.paragraph)
                    == (g.source, g.paragraph),
                }
                for j in checked.judged
            ]
            rec = {
                "id": q.id,
                "article": q.category.split(":")[1],
                "question": q.question,
                "answerable": q.answerable,
                "answers": q.answers,
                "raw": raw,
                "items": rows,
                "seconds": time.perf_counter() - t,
            }
            out.write(json.dumps(rec) + "\n")
            out.flush()
            if n % 10 == 0:
                rate = (time.perf_counter() - t0) / n
                print(f"{n}/{len(todo)} questions, {rate:.1f} s each", flush=True)


def _read(chain: Any, question: str, excerpts: Any) -> Any:
    """The chain's own reading step run to its end: its ``Reading``."""
    steps = chain.read(question, excerpts)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def rescore() -> None:
    """Recompute the answer check (``logit_answers``) of every recorded sentence with the shipped
    check, read in its section as the chain reads it, and drop recorded signals ``signals`` no
    longer computes; the model's reading is not re-run."""
    from rag.checking import section_of
    from rag.verification.answer_gate import SIGNALS as COMPUTED
    from rag.verification.answer_gate import _logit

    chain = _chain(_index()[1])
    chain_checks = chain.checker.checks
    assert chain_checks is not None, "the shipped configuration has the model's answer check"
    records = _load()
    for n, r in enumerate(records, start=1):
        for it in r["items"]:
            # The recorded sentence's paragraph, found again in the index.
            hits = chain.retrieve(it["sentence"])
            passage = next((p for p in hits if it["sentence"] in p.text), None)
            if passage is None:
                raise SystemExit(f"{r['id']}: the recorded sentence is not in the index")
            p = chain_checks.answer_score(it["sentence"], r["question"], section_of(passage))
            it["signals"] = {k: v for k, v in it["signals"].items() if k in COMPUTED}
            it["signals"]["logit_answers"] = _logit(p)
        if n % 20 == 0:
            print(f"{n}/{len(records)} questions rescored", flush=True)
    SIGNALS.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    print(f"wrote {SIGNALS}")


def _load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SIGNALS.read_text().splitlines() if line]


def _question_outcomes(records: list[dict[str, Any]], scores: list[list[float]], t: float):
    """(share of unanswerable answered, share of answerable answered with the gold answer in a
    passing sentence, share of answerable answered at all)."""
    un = [s for r, s in zip(records, scores, strict=True) if not r["answerable"]]
    an = [(r, s) for r, s in zip(records, scores, strict=True) if r["answerable"]]
    false_answer = sum(any(x >= t for x in s) for s in un) / max(1, len(un))
    gold = sum(
        any(x >= t and it["gold_in_sentence"] for x, it in zip(s, r["items"], strict=True))
        for r, s in an
    ) / max(1, len(an))
    answered = sum(any(x >= t for x in s) for _, s in an) / max(1, len(an))
    return false_answer, gold, answered


def fit(
    max_false_answer: float | None, out: Path | None = None, features: list[str] | None = None
) -> None:
    from sklearn.metrics import roc_auc_score

    from rag.verification.answer_gate import GATE_FILE

    out = out or GATE_FILE
    records = _load()
    names = sorted(records[0]["items"][0]["signals"]) if records[0]["items"] else None
    if names is None:
        names = sorted(next(r for r in records if r["items"])["items"][0]["signals"])
    if features:
        unknown = set(features) - set(names)
        if unknown:
            raise SystemExit(f"unknown signals: {sorted(unknown)}; recorded: {names}")
        names = sorted(features)
    X, y, art, qi = [], [], [], []
    for n, r in enumerate(records):
        for it in r["items"]:
            X.append([it["signals"][k] for k in names])
            y.append(int(bool(it["gold_in_sentence"])))
            art.append(r["article"])
            qi.append(n)
    X, y = np.array(X), np.array(y)
    oof = np.zeros(len(y))
    for a in sorted(set(art)):
        test = np.array([x == a for x in art])
        scaler, model = fit_logistic(X[~test], y[~test], c=0.1)
        oof[test] = model.predict_proba(scaler.transform(X[test]))[:, 1]
    scores: list[list[float]] = [[] for _ in records]
    for n, s in zip(qi, oof, strict=True):
        scores[n].append(float(s))
    # The rule this gate replaces: P(answers) >= the calibrated 0.52, a question word in the
    # sentence and a distinctive question term in its paragraph.
    cut = math.log(0.520308 / (1 - 0.520308))
    old = [
        [
            float(
                it["signals"]["logit_answers"] >= cut
                and not it["signals"]["no_question_word"]
                and it["signals"]["distinctive_in_paragraph"] > 0
            )
            for it in r["items"]
        ]
        for r in records
    ]
    q_label = [
        int(r["answerable"] and any(it["gold_in_sentence"] for it in r["items"])) for r in records
    ]
    q_score = [max(s) if s else 0.0 for s in scores]
    n_un = sum(not r["answerable"] for r in records)
    n_an = len(records) - n_un

    def point(fa: float, gold: float, answered: float, t: float) -> dict[str, float]:
        # A refusal of an answerable question counts as a failure, as a wrong answer does.
        accuracy = (gold * n_an + (1 - fa) * n_un) / len(records)
        return {
            "threshold": t,
            "false_answer": fa,
            "answered_gold": gold,
            "answered": answered,
            "accuracy": accuracy,
        }

    curve = [
        point(*_question_outcomes(records, scores, t), t)
        for t in sorted({round(x, 3) for x in oof} | {1.01})
    ]
    if max_false_answer is None:
        # The one-standard-error rule: of the thresholds whose accuracy is within one standard
        # error of the best, the lowest (the most answers; refusals are the costlier gap).
        best = max(c["accuracy"] for c in curve)
        se = math.sqrt(best * (1 - best) / len(records))
        chosen = min((c for c in curve if c["accuracy"] >= best - se), key=lambda c: c["threshold"])
        rule = "the lowest threshold whose accuracy (a wrong answer and a refusal of an "
        rule += "answerable question count alike) is within one standard error of the best, "
        rule += "out of fold, leaving one article out"
    else:
        ok = [c for c in curve if c["false_answer"] <= max_false_answer]
        chosen = min(ok, key=lambda c: c["threshold"])
        rule = f"lowest threshold with <= {max_false_answer:.0%} of unanswerable answered "
        rule += "(out of fold, leave one article out)"
    replaced = point(*_question_outcomes(records, old, 0.5), 0.5)
    summary = {
        "questions": len(records),
        "unanswerable": n_un,
        "items": len(y),
        "auc_items_oof": round(float(roc_auc_score(y, oof)), 3),
        "auc_questions_oof": round(float(roc_auc_score(q_label, q_score)), 3),
        "auc_items_p_answers_alone": round(
            float(roc_auc_score(y, X[:, names.index("logit_answers")])), 3
        ),
        "threshold": chosen["threshold"],
        "rule": rule,
        "at_threshold": chosen,
        "replaced_rule": replaced,
    }
    print(json.dumps(summary, indent=1))
    for c in curve[:: max(1, len(curve) // 25)]:
        print(
            f"  t={c['threshold']:.3f} false_answer={c['false_answer']:.3f} "
            f"answered_gold={c['answered_gold']:.3f} accuracy={c['accuracy']:.3f}"
        )
    scaler, model = fit_logistic(X, y, c=0.1)
    write_logistic(
        out,
        names,
        scaler,
        model,
        {
            "intercept": float(model.intercept_[0]),
            "threshold": chosen["threshold"],
            "fitted_on": "bench/data/answer_gate_signals.jsonl (SQuAD 2.0 dev, 9 articles)",
            "command": "bench/answer_gate.py fit"
            + ("" if max_false_answer is None else f" --max-false-answer {max_false_answer}")
            + (" --features " + " ".join(names) if features else ""),
            "measured": summary,
            "curve": curve,
        },
    )


PICK_SCORES = ROOT / "bench" / "data" / "answer_gate_pick_scores.jsonl"


def pick_collect(top: int) -> None:
    """The answer check on the sentences the reader ranks best (``Checker.judge_best_read``, as
    the chain's pick scores them), for the recorded questions that no statement of the model's
    answers at the shipped gate's threshold (the articles in turn): per question the P(yes) of
    each of the ``top`` best-ranked sentences read and whether it holds the gold answer
    (bench/data/answer_gate_pick_scores.jsonl; resumable)."""
    from rag.verification.answer_gate import load_answer_gate

    arts, settings = _index()
    chain, gate = _chain(settings), load_answer_gate()
    seen: dict[str, int] = defaultdict(int)
    records = []
    for r in _load():
        if not any(gate.score(it["signals"]) >= gate.threshold for it in r["items"]):
            seen[r["article"]] += 1
            records.append((seen[r["article"]], r))
    records = [r for _, r in sorted(records, key=lambda x: x[0])]
    done = {json.loads(x)["id"] for x in PICK_SCORES.read_text().splitlines()} if (
        PICK_SCORES.exists()
    ) else set()  # fmt: skip
    every = {g.question.id: g for g in all_questions(arts)}
    for n, r in enumerate(records, start=1):
        if r["id"] in done:
            continue
        q = every[r["id"]].question
        excerpts = chain.excerpts(q.question, chain.retrieve(q.question))
        judged = chain.checker.judge_best_read(excerpts, q.question, top)
        tops = [{"score": j.score, "gold": answer_in(j.claim.quote, q.answers)} for j in judged]
        chain.checker.scorer.release()
        row = {"id": r["id"], "article": r["article"], "answerable": q.answerable, "tops": tops}
        with PICK_SCORES.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if n % 20 == 0:
            print(f"{n}/{len(records)}", flush=True)


def pick_fit(out: Path | None) -> None:
    """How many best-ranked sentences to judge and the threshold: the pair that answers the
    most recorded questions rightly (gold answer in the sentence shown, or an unanswerable
    question left unanswered); and the floor from which the best sentence is an abstention's
    evidence; written to rag/verification/answer_gate_pick.json."""
    from rag.verification.answer_gate import PICK_FILE

    rows = [json.loads(x) for x in PICK_SCORES.read_text().splitlines() if x]
    ans = [r for r in rows if r["answerable"]]
    un = [r for r in rows if not r["answerable"]]

    def shown(r: dict[str, Any], top: int, t: float) -> dict | None:
        """The best of the ``top`` sentences when it scores at least ``t``."""
        best = max(r["tops"][:top], key=lambda x: x["score"], default=None)
        return best if best is not None and best["score"] >= t else None

    curve = []
    for top in (1, 2, 3):
        for t in np.round(np.arange(0.30, 0.91, 0.02), 2).tolist():
            gold = sum(bool((b := shown(r, top, t)) and b["gold"]) for r in ans)
            false = sum(shown(r, top, t) is not None for r in un)
            curve.append({"top": top, "threshold": t, "gold": gold, "false": false})
    best = max(curve, key=lambda c: (c["gold"] - c["false"], c["threshold"], -c["top"]))
    top = best["top"]

    # Under the threshold the best sentence is still shown as an abstention's closest evidence
    # from this floor: the highest that keeps 95 % of the best sentences holding the gold answer.
    held = sorted(b["score"] for r in ans if (b := shown(r, top, -np.inf)) and b["gold"])
    floor = held[int(0.05 * len(held))] if held else best["threshold"]
    evidence_gold = sum(bool((b := shown(r, top, floor)) and b["gold"]) for r in ans)
    evidence_un = sum(shown(r, top, floor) is not None for r in un)
    data = {
        "top": best["top"],
        "threshold": best["threshold"],
        "evidence_floor": floor,
        "fitted_on": "SQuAD 2.0 dev, the 9 development articles: the recorded questions no "
        "statement answers at the gate's threshold",
        "command": "bench/answer_gate.py pick-fit",
        "measured": {
            "questions": len(rows),
            "answerable": len(ans),
            "unanswerable": len(un),
            "gold_answered": best["gold"],
            "unanswerable_answered": best["false"],
            "evidence_gold": evidence_gold,
            "evidence_unanswerable": evidence_un,
            "curve": curve,
        },
    }
    path = out or PICK_FILE
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"top {best['top']}, threshold {best['threshold']}: {best['gold']}/{len(ans)} "
          f"answerable answered with gold, {best['false']}/{len(un)} unanswerable answered; "
          f"evidence from {floor:.3f}: {evidence_gold} with gold, {evidence_un} unanswerable; "
          f"wrote {path}")  # fmt: skip


def hidden(c_values: list[float]) -> None:
    """Does the model's last hidden state help the gate? For every recorded statement's sentence,
    the answer check as the chain asks it (the packaged model's chat template, the sentence's
    section) is read once with llama.cpp's embeddings on, for its last token's hidden state (the
    check's logit is the recorded one). Logistic regressions on the hidden state, alone and with
    the logit, are measured out of fold (one article left out at a time) against the logit
    alone. Nothing is written."""
    from contextlib import nullcontext

    import llama_cpp
    from sklearn.metrics import roc_auc_score

    from rag.llm import packaged_model_path
    from rag.verification.prompts import answer_messages
    from rag.verification.scoring import LlamaCppYesNoScorer

    path = packaged_model_path()
    llama = llama_cpp.Llama(str(path), n_ctx=4096, n_threads=2, verbose=False)
    llama_cpp.llama_set_embeddings(llama._ctx.ctx, True)  # the logits stay readable too
    # The shipped check's own path (chat template, shared prefix kept); no cache, so every
    # check is evaluated and leaves its last token's hidden state in the context.
    scorer = LlamaCppYesNoScorer(llama, nullcontext(), cache_size=0)
    records = _load()
    H, y, art, lg = [], [], [], []
    for n, r in enumerate(records, start=1):
        for it in r["items"]:
            scorer.p_yes(answer_messages(it["sentence"], r["question"], _section(r)))
            ctx = llama._ctx.ctx
            H.append(np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_ith(ctx, -1),
                                           shape=(llama.n_embd(),)).copy())  # fmt: skip
            y.append(int(bool(it["gold_in_sentence"])))
            art.append(r["article"])
            lg.append(it["signals"]["logit_answers"])
        if n % 50 == 0:
            print(f"{n}/{len(records)} questions read", flush=True)
    X, Y, A, L = np.array(H), np.array(y), np.array(art), np.array(lg)[:, None]
    print(f"{len(Y)} statements: the check's logit alone, AUC {roc_auc_score(Y, L[:, 0]):.3f}")
    for c in c_values:
        alone, both = _oof_auc(X, Y, A, c), _oof_auc(np.hstack([X, L]), Y, A, c)
        print(f"C={c}: the hidden state {alone:.3f}, with the logit {both:.3f} (out of fold)")


def _section(record: dict[str, Any]) -> str:
    """The section a recorded question's check is read under when the paragraph is not at hand:
    its article's title in words (the chain reads the paragraph's heading path)."""
    return str(record["article"]).replace("_", " ")


def _oof_auc(features: Any, labels: Any, articles: Any, c: float) -> float:
    """AUC of a logistic regression on ``features``, out of fold by leaving one article out."""
    from sklearn.metrics import roc_auc_score

    out = np.zeros(len(labels))
    for a in sorted(set(articles)):
        test = articles == a
        scaler, model = fit_logistic(features[~test], labels[~test], c=c)
        out[test] = model.predict_proba(scaler.transform(features[test]))[:, 1]
    return float(roc_auc_score(labels, out))


def content_free() -> None:
    """Does the answer check corrected by its score on a content-free sentence help the gate?
    For every recorded question the shipped check is asked with "N/A" and with "[MASK]" in
    place of the sentence (the question's prior P(yes)); logistic regressions on the recorded
    logit with those beside it are measured out of fold by article against the logit alone.
    Nothing is written."""
    from rag.chain import get_chain
    from rag.verification.answer_gate import _logit

    _, settings = _index()
    checks = get_chain(settings).checker.checks
    records = _load()
    rows, y, art = [], [], []
    for n, r in enumerate(records, start=1):
        prior = [
            _logit(checks.answer_score(e, r["question"], _section(r))) for e in ("N/A", "[MASK]")
        ]
        for it in r["items"]:
            rows.append([it["signals"]["logit_answers"], *prior])
            y.append(int(bool(it["gold_in_sentence"])))
            art.append(r["article"])
        if n % 100 == 0:
            print(f"{n}/{len(records)} questions read", flush=True)
    X, Y, A = np.array(rows), np.array(y), np.array(art)
    print(f"{len(Y)} statements, out of fold by article (C 0.1):")
    print(f"  the check's logit alone {_oof_auc(X[:, :1], Y, A, 0.1):.3f}")
    print(f"  minus the 'N/A' prior {_oof_auc(X[:, :1] - X[:, 1:2], Y, A, 0.1):.3f}")
    print(f"  with both priors beside it {_oof_auc(X, Y, A, 0.1):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--per-article", type=int, default=40)
    c.add_argument("--seed", type=int, default=0)
    sub.add_parser("rescore")
    h = sub.add_parser("hidden")
    h.add_argument("--c", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    sub.add_parser("content-free")
    pc = sub.add_parser("pick-collect")
    pc.add_argument("--top", type=int, default=3)
    pf = sub.add_parser("pick-fit")
    pf.add_argument("--out", type=Path, default=None, help="default: the shipped pick file")
    f = sub.add_parser("fit")
    f.add_argument(
        "--max-false-answer",
        type=float,
        default=None,
        help="choose the threshold for this share of unanswerable questions answered "
        "(default: the most accurate threshold)",
    )
    f.add_argument("--out", type=Path, default=None, help="default: the shipped gate file")
    f.add_argument(
        "--features", nargs="+", default=None, help="the signals to fit on (default: all recorded)"
    )
    args = ap.parse_args()
    if args.cmd == "collect":
        collect(args.per_article, args.seed)
    elif args.cmd == "rescore":
        rescore()
    elif args.cmd == "hidden":
        hidden(args.c)
    elif args.cmd == "content-free":
        content_free()
    elif args.cmd == "pick-collect":
        pick_collect(args.top)
    elif args.cmd == "pick-fit":
        pick_fit(args.out)
    else:
        fit(args.max_false_answer, args.out, args.features)


if __name__ == "__main__":
    main()
