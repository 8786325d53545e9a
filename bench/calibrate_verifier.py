"""Fit the verifier's thresholds on the model's P(yes) from labelled data, and record them.

Labelled pairs:
- support ("does the sentence say exactly this?"): the adversarial set
  ``evals/faithfulness.jsonl`` (accept, and the true-but-irrelevant kind: yes; every other
  reject: no). Only the cases the lexical stage leaves undecided are the threshold's job, so
  the threshold is fitted on those.
- answer ("does this sentence answer the question?"): the adversarial set (irrelevant: no,
  others: yes); the fixed suite ``evals/questions.jsonl`` (answerable: the sentence holding
  the evidence, yes; unanswerable: the corpus sentence sharing most words with the question,
  no); SQuAD 2.0 dev articles (answerable: the gold sentence, yes; unanswerable: the
  sentence of the question's paragraph sharing most words with it, no).

- hard answer pairs (``--hard``, source "hard"): the fixed suite and SQuAD dev questions, each
  answerable one with its gold sentence (yes) and the sentence sharing most words with the
  question that holds no gold answer (no: the thing next to what was asked), each unanswerable
  one with its best-overlap sentence (no). Not fitted on: the ``answer`` threshold is fitted on
  the pairs above and measured on these (``answer_on_hard_pairs``), as out-of-sample data.

Writes ``rag/verification/calibration.json`` (thresholds, what they were fitted on, a
held-out check), ``docs/verification/{support,answer}_curve.csv``, the raw scores
``docs/verification/scores.jsonl`` and ``docs/verification/calibration.png``.

    .venv/bin/python bench/calibrate_verifier.py [--squad-per-article 8] [--from-scores FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.squad import DEFAULT_ARTICLES  # noqa: E402
from rag.loading import load_corpus  # noqa: E402
from rag.paragraphs import split_paragraphs  # noqa: E402
from rag.sentences import sentence_spans  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.verification.calibration import CALIBRATION_FILE, fit_threshold, pr_curve  # noqa: E402
from rag.verification.lexical import lexical_decision, tokenize  # noqa: E402

DOCS = ROOT / "docs" / "verification"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v2-dev" / "dev-v2.0.json"
ARTICLES = DEFAULT_ARTICLES  # the 9 SQuAD development articles (../shared/README.md)
# The fitting rules: at most this share of unfaithful statements that reach the model may be
# accepted; at least this share of answering sentences must be taken as answers.
SUPPORT_MAX_FPR = 0.05
ANSWER_MIN_RECALL = 0.90


def _keys(text: str) -> set[str]:
    return {t.key for t in tokenize(text) if not t.stop}


def best_sentence(question: str, texts: list[str]) -> str:
    """The sentence of ``texts`` sharing most content words with the question."""
    q = _keys(question)
    best = ("", -1.0)
    for text in texts:
        for s, e in sentence_spans(text):
            sent = text[s:e]
            score = len(q & _keys(sent)) / (1 + 0.01 * len(sent))
            if score > best[1]:
                best = (sent, score)
    return best[0]


def adversarial_pairs(path: Path, answer_every: int = 1) -> list[dict[str, Any]]:
    """Support pairs for every case; answer pairs for the irrelevant ones (no) and every
    ``answer_every``-th other one (yes)."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    out = []
    for r in rows:
        d = lexical_decision(r["statement"], r["evidence"], r["question"])
        supported = r["expected"] == "accept" or r["kind"] == "irrelevant"
        base = {"source": "adversarial", "id": r["id"], "doc": r["doc"], "kind": r["kind"]}
        out.append(
            {
                **base,
                "check": "support",
                "statement": r["statement"],
                "evidence": r["evidence"],
                "question": r["question"],
                "label": supported,
                "lexical": d.supported,
            }
        )
        if r["kind"] == "irrelevant" or len(out) % (2 * answer_every) == 1:
            out.append(
                {
                    **base,
                    "check": "answer",
                    "evidence": r["evidence"],
                    "question": r["question"],
                    "label": r["kind"] != "irrelevant",
                }
            )
    return out


def fixed_suite_pairs(path: Path, settings: Settings, limit: int = 0) -> list[dict[str, Any]]:
    texts = [p.text for doc in load_corpus(settings.corpus_dir) for p in split_paragraphs(doc)]
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    out = []
    taken = {True: 0, False: 0}
    for r in rows:
        if r.get("history") or r.get("category") == "injection":
            continue
        if limit and taken[bool(r["answerable"])] >= limit:
            continue
        taken[bool(r["answerable"])] += 1
        if r["answerable"]:
            ev = r["evidence"][0]
            sent = next(
                (
                    t[s:e]
                    for t in texts
                    for s, e in sentence_spans(t)
                    if ev.lower() in t[s:e].lower()
                ),
                None,
            )
            if sent is None:
                continue
            label = True
        else:
            sent, label = best_sentence(r["question"], texts), False
        out.append(
            {
                "source": "fixed",
                "id": r["id"],
                "doc": "bhutan-qatar.md",
                "check": "answer",
                "evidence": sent,
                "question": r["question"],
                "label": label,
            }
        )
    return out


def squad_questions(path: Path, rng: random.Random) -> list[tuple[dict, list, list]]:
    """Per dev article: (article, answerable, unanswerable), each a shuffled list of
    (paragraph text, question)."""
    out = []
    for art in json.loads(path.read_text(encoding="utf-8"))["data"]:
        if art["title"] not in ARTICLES:
            continue
        pos: list[tuple[str, dict]] = []
        neg: list[tuple[str, dict]] = []
        for para in art["paragraphs"]:
            ctx = " ".join(para["context"].split())
            for qa in para["qas"]:
                (neg if qa["is_impossible"] else pos).append((ctx, qa))
        rng.shuffle(pos)
        rng.shuffle(neg)
        out.append((art, pos, neg))
    return out


def squad_pairs(path: Path, per_article: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for art, pos, neg in squad_questions(path, rng):
        for ctx, qa in pos[: per_article // 2]:
            ans = qa["answers"][0]["text"]
            sent = next((ctx[s:e] for s, e in sentence_spans(ctx) if ans in ctx[s:e]), None)
            if sent:
                out.append(_squad_row(art["title"], qa, sent, True))
        for ctx, qa in neg[: per_article // 2]:
            out.append(_squad_row(art["title"], qa, best_sentence(qa["question"], [ctx]), False))
    return out


def _squad_row(title: str, qa: dict[str, Any], sent: str, label: bool) -> dict[str, Any]:
    return {
        "source": "squad",
        "id": qa["id"],
        "doc": f"squad:{title}",
        "check": "answer",
        "evidence": sent,
        "question": qa["question"],
        "label": label,
    }


def _sentences(texts: list[str]) -> list[str]:
    return [t[a:b] for t in texts for a, b in sentence_spans(t)]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def hard_pairs(
    questions: Path, squad: Path, settings: Settings, n_fixed: int, per_article: int, seed: int
) -> list[dict[str, Any]]:
    """Answer pairs whose negatives are the sentences next to the answer (see the docstring)."""
    rng = random.Random(seed)
    where: dict[str, str] = {}  # sentence -> its document ("evals/docs" for the eval documents)
    for folder in (settings.corpus_dir, ROOT / "evals" / "docs"):
        for doc in load_corpus(folder):
            name = "evals/docs" if folder.name == "docs" else doc.source
            for sent in _sentences([p.text for p in split_paragraphs(doc)]):
                where.setdefault(sent, name)
    sents = list(where)
    rows = [json.loads(x) for x in questions.read_text(encoding="utf-8").splitlines() if x.strip()]
    rng.shuffle(rows)
    rows = [r for r in rows if not r.get("history") and r.get("category") != "injection"]
    out: list[dict[str, Any]] = []

    def row(doc: str, qid: str, question: str, sent: str, label: bool) -> dict[str, Any]:
        return {
            "source": "hard",
            "id": qid,
            "doc": doc,
            "check": "answer",
            "evidence": sent,
            "question": question,
            "label": label,
        }

    for r in rows[:n_fixed]:
        if not r["answerable"]:
            best = best_sentence(r["question"], sents)
            out.append(row(where[best], r["id"], r["question"], best, False))
            continue
        ev = _norm(r["evidence"][0])
        gold = [t for t in sents if ev in _norm(t)]
        if not gold:
            continue
        doc = where[gold[0]]
        answers = [_norm(a) for a in r.get("answers", []) if a]
        others = [
            t for t in sents if ev not in _norm(t) and not any(a in _norm(t) for a in answers)
        ]
        out.append(row(doc, r["id"], r["question"], gold[0], True))
        out.append(row(doc, r["id"], r["question"], best_sentence(r["question"], others), False))
    if squad.is_file():
        for art, pos, neg in squad_questions(squad, rng):
            doc = f"squad:{art['title']}"
            for ctx, qa in pos[:per_article]:
                golds = [a["text"] for a in qa["answers"]]
                cs = _sentences([ctx])
                g = [t for t in cs if golds[0] in t]
                if not g:
                    continue
                out.append(row(doc, qa["id"], qa["question"], g[0], True))
                o = [t for t in cs if not any(a in t for a in golds)]
                if o:
                    out.append(
                        row(doc, qa["id"], qa["question"], best_sentence(qa["question"], o), False)
                    )
            for ctx, qa in neg[:per_article]:
                out.append(
                    row(doc, qa["id"], qa["question"], best_sentence(qa["question"], [ctx]), False)
                )
    return out


def score_all(pairs: list[dict[str, Any]], settings: Settings, shard: tuple[int, int]) -> None:
    from rag.verification import get_verifier

    v = get_verifier("llm", settings)
    t0 = time.perf_counter()
    # Only the cases the lexical stage leaves undecided reach the model's support check.
    todo = [p for p in pairs if not (p["check"] == "support" and p.get("lexical") is not None)]
    # Same sentence back to back: the model re-reads only what differs from the last prompt.
    todo.sort(key=lambda p: (p["evidence"], p["check"] != "support"))
    evidence = sorted({p["evidence"] for p in todo})
    mine = {e for i, e in enumerate(evidence) if i % shard[1] == shard[0]}
    todo = [p for p in todo if p["evidence"] in mine]
    for i, p in enumerate(todo):
        t = time.perf_counter()
        if p["check"] == "support":
            p["score"] = v.support_score(p["statement"], p["evidence"], p["question"])  # type: ignore[attr-defined]
        else:
            p["score"] = v.answer_score(p["evidence"], p["question"])  # type: ignore[attr-defined]
        p["seconds"] = time.perf_counter() - t
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(todo)} scored, {time.perf_counter() - t0:.0f} s", flush=True)


def fit(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    sup = [p for p in pairs if p["check"] == "support" and p.get("lexical") is None]
    every = [p for p in pairs if p["check"] == "answer"]
    ans = [p for p in every if p["source"] != "hard"]
    s_fit = fit_threshold(
        [p["score"] for p in sup], [p["label"] for p in sup], max_fpr=SUPPORT_MAX_FPR
    )
    a_fit = fit_threshold(
        [p["score"] for p in ans], [p["label"] for p in ans], min_recall=ANSWER_MIN_RECALL
    )
    return {
        "support": s_fit,
        "answer": a_fit,
        "n_support": len(sup),
        "n_answer": len(ans),
    }


def on_hard_pairs(pairs: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Recall and false-positive rate of an answer threshold on the hard pairs."""
    hard = [p for p in pairs if p["source"] == "hard"]
    pos = [p for p in hard if p["label"]]
    neg = [p for p in hard if not p["label"]]
    return {
        "threshold": threshold,
        "recall": sum(p["score"] >= threshold for p in pos) / max(1, len(pos)),
        "false_positive_rate": sum(p["score"] >= threshold for p in neg) / max(1, len(neg)),
        "n": len(hard),
    }


def held_out(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Two-fold by document: fit on one half of the documents, measure on the other."""
    docs = sorted({p["doc"] for p in pairs})
    folds = [set(docs[0::2]), set(docs[1::2])]
    out = {}
    for check in ("support", "answer"):
        tp = fp = fn = tn = 0
        for k in (0, 1):
            train = [p for p in pairs if p["doc"] in folds[k]]
            test = [p for p in pairs if p["doc"] not in folds[k] and p["check"] == check]
            if check == "support":
                test = [p for p in test if p.get("lexical") is None]
            t = fit(train)[check]["threshold"]
            for p in test:
                yes = p["score"] >= t
                tp += yes and p["label"]
                fp += yes and not p["label"]
                fn += (not yes) and p["label"]
                tn += (not yes) and not p["label"]
        out[check] = {
            "recall": tp / max(1, tp + fn),
            "false_positive_rate": fp / max(1, fp + tn),
            "n": tp + fp + fn + tn,
        }
    return out


def adversarial_rates(pairs: list[dict[str, Any]], t_support: float, t_answer: float) -> dict:
    """The issue's targets on the adversarial set at these thresholds (in-sample).

    Support: the lexical decision, else the model's score. Answer: the model's score where it
    was scored (every irrelevant case, a sample of the others); a case without one counts as
    answered, so the paraphrase rate is an upper bound.
    """
    sup = {p["id"]: p for p in pairs if p["source"] == "adversarial" and p["check"] == "support"}
    ans = {p["id"]: p for p in pairs if p["source"] == "adversarial" and p["check"] == "answer"}

    def supported(p: dict[str, Any]) -> bool:
        return bool(p["lexical"]) if p["lexical"] is not None else p["score"] >= t_support

    def answered(i: str) -> bool:
        return i not in ans or ans[i]["score"] >= t_answer

    faithful = [p for p in sup.values() if p["kind"] in ("paraphrase", "verbatim")]
    unfaithful = [p for p in sup.values() if not p["label"]]
    irrelevant = [p for p in sup.values() if p["kind"] == "irrelevant"]
    accepted = [p for p in unfaithful if supported(p) and answered(p["id"])]
    return {
        "unfaithful_shown_as_written": 0,  # by construction: tests/unit/test_verification.py
        "unfaithful_accepted": f"{len(accepted)}/{len(unfaithful)}",
        "unfaithful_accepted_ids": [p["id"] for p in accepted],
        "faithful_accepted": sum(supported(p) and answered(p["id"]) for p in faithful)
        / max(1, len(faithful)),
        "faithful_n": len(faithful),
        "irrelevant_rejected": sum(not answered(p["id"]) for p in irrelevant)
        / max(1, len(irrelevant)),
        "irrelevant_n": len(irrelevant),
    }


def plot(pairs: list[dict[str, Any]], fitted: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, check in zip(axes, ("support", "answer"), strict=True):
        sel = [p for p in pairs if p["check"] == check]
        if check == "support":
            sel = [p for p in sel if p.get("lexical") is None]
        curve = pr_curve([p["score"] for p in sel], [p["label"] for p in sel])
        ax.plot([r["recall"] for r in curve], [r["precision"] for r in curve], marker=".")
        t = fitted[check]
        ax.scatter([t["recall"]], [t["precision"]], color="red", zorder=3)
        ax.annotate(f"threshold {t['threshold']:.3f}", (t["recall"], t["precision"]))
        ax.set_title(f"{check}: precision/recall of 'yes' (n={len(sel)})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--adversarial", type=Path, default=ROOT / "evals" / "faithfulness.jsonl")
    ap.add_argument("--questions", type=Path, default=ROOT / "evals" / "questions.jsonl")
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--squad-per-article", type=int, default=2)
    ap.add_argument(
        "--adversarial-answer-every", type=int, default=5, help="answer pairs: every n-th case"
    )
    ap.add_argument(
        "--fixed-per-label", type=int, default=5, help="fixed-suite answer pairs per label"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hard-fixed", type=int, default=30, help="fixed-suite questions (hard pairs)")
    ap.add_argument("--hard-per-article", type=int, default=2, help="SQuAD questions per kind")
    ap.add_argument("--from-scores", type=Path, nargs="+", help="re-fit saved scores (no model)")
    ap.add_argument("--shard", default="0/1", help="score only shard i of n (i/n) and stop")
    args = ap.parse_args()
    settings = Settings()
    DOCS.mkdir(parents=True, exist_ok=True)
    if args.from_scores:
        pairs = [
            json.loads(x) for f in args.from_scores for x in f.read_text().splitlines() if x.strip()
        ]
        # Pairs a shard did not score (each file holds them all) are dropped.
        pairs = list({json.dumps(p, sort_keys=True): p for p in pairs if "score" in p}.values())
        pairs += [
            p
            for p in (json.loads(x) for x in args.from_scores[0].read_text().splitlines() if x)
            if p["check"] == "support" and p.get("lexical") is not None
        ]
    else:
        pairs = adversarial_pairs(args.adversarial, args.adversarial_answer_every)
        pairs += fixed_suite_pairs(args.questions, settings, args.fixed_per_label)
        if args.squad.is_file():
            pairs += squad_pairs(args.squad, args.squad_per_article, args.seed)
        pairs += hard_pairs(
            args.questions, args.squad, settings, args.hard_fixed, args.hard_per_article, args.seed
        )
        i, n = (int(x) for x in args.shard.split("/"))
        print(f"scoring shard {i}/{n} of {len(pairs)} labelled pairs with the model", flush=True)
        score_all(pairs, settings, (i, n))
        name = "scores.jsonl" if n == 1 else f"scores.shard{i}.jsonl"
        with (DOCS / name).open("w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
        if n > 1:
            return
    fitted = fit(pairs)
    for check in ("support", "answer"):
        sel = [p for p in pairs if p["check"] == check]
        if check == "support":
            sel = [p for p in sel if p.get("lexical") is None]
        with (DOCS / f"{check}_curve.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["threshold", "precision", "recall", "fpr"])
            w.writeheader()
            w.writerows(pr_curve([p["score"] for p in sel], [p["label"] for p in sel]))
    plot(pairs, fitted, DOCS / "calibration.png")
    seconds = [p["seconds"] for p in pairs if p.get("seconds") is not None]
    sources: dict[str, int] = {}
    for p in pairs:
        key = f"{p['check']}:{p['source']}"
        sources[key] = sources.get(key, 0) + 1
    record = {
        "support": {**fitted["support"], "rule": f"lowest threshold with fpr <= {SUPPORT_MAX_FPR}"},
        "answer": {
            **fitted["answer"],
            "rule": f"highest threshold with recall >= {ANSWER_MIN_RECALL}",
        },
        "answer_on_hard_pairs": on_hard_pairs(pairs, fitted["answer"]["threshold"]),
        "fitted_on": {
            "pairs": sources,
            "support_pairs_fitted": fitted["n_support"],
            "answer_pairs_fitted": fitted["n_answer"],
            "adversarial": str(args.adversarial.relative_to(ROOT)),
            "fixed_suite": str(args.questions.relative_to(ROOT)),
            "squad": f"{len(ARTICLES)} dev articles, {args.squad_per_article} per article, "
            f"seed {args.seed}",
        },
        "held_out_two_fold_by_document": held_out(pairs),
        "adversarial_in_sample": adversarial_rates(
            pairs, fitted["support"]["threshold"], fitted["answer"]["threshold"]
        ),
        "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (packaged)",
        "seconds_per_check_median": sorted(seconds)[len(seconds) // 2] if seconds else None,
    }
    CALIBRATION_FILE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
