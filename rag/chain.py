"""The answer chain (a plain class over LangChain runnables):

condense(question, history) -> retrieve -> prompt with numbered paragraphs -> LLM -> parse
-> ground each statement in a source sentence that states it -> the answer gate decides whether
that sentence answers the question -> Answer (answered, unconfirmed evidence, or abstention).

Nothing the model writes reaches the user unverified: streamed ``draft`` events are progress
only; the ``final`` event carries the verified ``Answer``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from rag.citations import left_the_format, parse_claims
from rag.errors import InvalidQueryError, LLMError, LLMTimeoutError
from rag.grounding import GroundedClaim, ground_claims, question_parts
from rag.llm import get_llm, llm_lock
from rag.prompts import answer_prompt, condense_prompt, format_context, format_history
from rag.retrieval import Retriever, get_retriever, relevance, validate_query
from rag.selection import Excerpt, select
from rag.settings import Settings
from rag.text import content_terms
from rag.tokens import token_counter
from rag.types import (
    ABSTENTION_TEXT,
    UNCONFIRMED_TEXT,
    Answer,
    AnswerEvent,
    Citation,
    Passage,
    Stage,
    Timings,
)
from rag.verification import (
    CascadeVerifier,
    LexicalVerifier,
    LLMVerifier,
    Verifier,
    load_thresholds,
    scorer_for,
)
from rag.verification.answer_gate import AnswerGate, load_answer_gate, signals

logger = logging.getLogger(__name__)

History = Sequence[dict[str, str]]


def validate_history(history: History | None) -> list[dict[str, str]]:
    """History as a list of {"role": "user"|"assistant", "content": str}."""
    if not history:
        return []
    out = []
    for i, msg in enumerate(history):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise InvalidQueryError(
                f"history item {i} must be {{'role': 'user'|'assistant', 'content': str}}"
            )
        out.append({"role": str(msg["role"]), "content": str(msg.get("content", ""))})
    return out


class AnswerChain:
    """Grounded question answering with verified paragraph citations.

    Example:
        >>> chain = AnswerChain(settings=Settings())
        >>> ans = chain.invoke("Which institution is Dr. Tenzin Wangchuk affiliated with?")
        >>> ans.text, [(c.source, c.paragraph) for c in ans.citations]
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        retriever: Retriever | None = None,
        llm: BaseChatModel | None = None,
        verifier: Verifier | None = None,
        answer_gate: AnswerGate | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._answer_gate = answer_gate
        self._retriever = retriever
        self._llm = llm
        self._llm_injected = llm is not None
        self._verifier = verifier
        self._count_tokens: Any = None

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = get_retriever(self.settings)
        return self._retriever

    @property
    def llm(self) -> BaseChatModel:
        if self._llm is None:
            self._llm = get_llm(self.settings)
        return self._llm

    @property
    def verifier(self) -> Verifier:
        """The configured verifier over the chain's own model (one instance, one lock)."""
        if self._verifier is None:
            name = self.settings.verification.verifier
            scorer = None if name == "lexical" else scorer_for(self.llm, self.settings)
            if scorer is None:
                if name != "lexical":
                    logger.warning("the model gives no log-probabilities: lexical checks only")
                self._verifier = LexicalVerifier()
            else:
                llm = LLMVerifier(scorer, load_thresholds())
                self._verifier = (
                    llm
                    if name == "llm"
                    else CascadeVerifier(
                        llm, check_support=self.settings.verification.model_support_check
                    )
                )
        return self._verifier

    @property
    def answer_gate(self) -> AnswerGate:
        """Whether a sentence answers the question (default: the shipped fitted gate)."""
        if self._answer_gate is None:
            self._answer_gate = load_answer_gate()
        return self._answer_gate

    @property
    def count_tokens(self) -> Any:
        """Tokens the model reads for a text (its own tokenizer, or tiktoken for a server)."""
        if self._count_tokens is None:
            self._count_tokens = token_counter(self.llm, self.settings.llm.model)
        return self._count_tokens

    def _lock(self) -> Any:
        if self._llm_injected:  # an injected model: the caller owns its concurrency
            from contextlib import nullcontext

            return nullcontext()
        return llm_lock(self.settings)

    # -- stages ---------------------------------------------------------------------------

    def _generate_text(self, runnable: Runnable, inputs: dict[str, Any]) -> Iterator[str]:
        """Stream model tokens, stopping at the generation timeout."""
        with self._lock():
            # The deadline starts once the model is ours, not while queued behind others.
            deadline = time.perf_counter() + self.settings.llm.timeout_s
            stream = iter(runnable.stream(inputs))
            finished = False
            try:
                while True:
                    try:
                        token = next(stream)
                    except StopIteration:
                        finished = True
                        return
                    except LLMError:
                        raise
                    except Exception as exc:  # provider errors: connection refused, HTTP 5xx, …
                        where = self.settings.llm.base_url or self.settings.llm.backend
                        raise LLMError(f"the language model ({where}) failed: {exc}") from exc
                    yield token
                    if time.perf_counter() > deadline:
                        raise LLMTimeoutError(
                            f"the model did not finish within {self.settings.llm.timeout_s:.0f} s "
                            "(RAG_LLM__TIMEOUT_S)"
                        )
            finally:
                if not finished:
                    # A generation stopped early (timeout, error, a caller that went away) is
                    # closed here, still under the lock: left to the garbage collector, its
                    # clean-up would run in whichever thread holds the model next, and
                    # llama.cpp aborts (GGML_ASSERT) on two threads in one context.
                    close = getattr(stream, "close", None)
                    if callable(close):
                        close()
                    reset = getattr(getattr(self._llm, "client", None), "reset", None)
                    if callable(reset):
                        reset()  # no stale prompt prefix is reused by the next generation

    def condense(self, question: str, history: History) -> str:
        """Rewrite a follow-up into a standalone question (unchanged when there is no history)."""
        if not history:
            return question
        chain = condense_prompt | self.llm | StrOutputParser()
        text = "".join(
            self._generate_text(chain, {"history": format_history(history), "question": question})
        )
        rewritten = " ".join(text.strip().strip('"').split())
        rewritten = rewritten.removeprefix("Standalone question:").strip()
        # A small model sometimes answers instead of rewriting: fall back to the question.
        if not rewritten or len(rewritten) > max(300, 4 * len(question)) or "\n" in text.strip():
            return question
        return rewritten

    def retrieve(self, query: str) -> list[Passage]:
        return self.retriever.search(query, k=self.settings.retrieval.k)

    def context_passages(self, passages: Sequence[Passage]) -> list[Passage]:
        """The passages the model may read from: the best few."""
        return list(passages[: self.settings.llm.max_context_passages])

    def excerpts(self, question: str, passages: Sequence[Passage]) -> list[Excerpt]:
        """What the model reads: the sentences most likely to answer, under the token budget."""
        return select(
            question,
            self.context_passages(passages),
            embedder=self.retriever.embedder,
            count_tokens=self.count_tokens,
            budget=self.settings.llm.context_tokens,
        )

    def verify(
        self, raw: str, passages: Sequence[Passage], question: str
    ) -> tuple[list[GroundedClaim], list[tuple[GroundedClaim, float]]]:
        """The statements of ``raw`` that are accepted, each with its source sentence, and
        each statement the answer gate judged with its score (empty when no gate is used).

        The shipped verifier (``CascadeVerifier``) judges whether a sentence states the
        statement; whether that sentence answers the question is the fitted answer gate's
        decision (``rag.verification.answer_gate``). Other verifiers decide both themselves.
        """
        distinctive = getattr(self.retriever, "distinctive_terms", None)
        wanted = distinctive(question) if distinctive is not None else None
        verifier = self.verifier
        if isinstance(verifier, CascadeVerifier) and self.settings.verification.answer_gate:
            gate = self.answer_gate
            support = CascadeVerifier(
                verifier.llm, check_support=verifier.check_support, check_answers=False
            )
            claims = ground_claims(
                parse_claims(raw), passages, question, support, self._similarity()
            )
            scored = []
            for c in claims:
                feats = signals(
                    question=question,
                    statement=c.statement,
                    sentence=c.quote,
                    paragraph=c.passage.text,
                    p_answers=verifier.llm.answer_score(c.quote, question),
                    p_answers_paragraph=verifier.llm.answer_score(c.passage.text, question),
                    rank=next(i for i, p in enumerate(passages) if p is c.passage) + 1,
                    similarity=c.passage.similarity or 0.0,
                    distinctive=wanted,
                )
                scored.append((c, gate.score(feats)))
            return [c for c, x in scored if x >= gate.threshold], scored
        claims = ground_claims(parse_claims(raw), passages, question, verifier, self._similarity())
        if not self.settings.verification.evidence_must_match_question or wanted is None:
            return claims, []
        # A cited paragraph must share a distinctive term with the question (a word found in
        # at most half of the indexed chunks): a cheap guard before the answer check.
        return [c for c in claims if wanted & set(content_terms(c.passage.text))], []

    def _similarity(self) -> Any:
        """Cosine similarity of a statement to candidate sentences by the retriever's embedder
        (None when the retriever has none, e.g. a test fake). One per ``verify`` call: a
        sentence is embedded once however many statements are ranked against it."""
        embedder = getattr(self.retriever, "embedder", None)
        if embedder is None:
            return None

        unit: dict[str, Any] = {}  # text -> unit vector: each sentence embedded once per answer

        def similarity(statement: str, sentences: Sequence[str]) -> list[float]:
            new = [t for t in dict.fromkeys([statement, *sentences]) if t not in unit]
            for text, v in zip(new, embedder.embed_documents(new) if new else [], strict=True):
                vector = np.asarray(v, dtype=float)
                unit[text] = vector / (np.linalg.norm(vector) + 1e-12)
            return [float(unit[s] @ unit[statement]) for s in sentences]

        return similarity

    def _release_checks(self) -> None:
        """Give the model's context back to the generator after a round of checks (the model's
        P(yes) scorer restores what the last answer left, so the next answer re-reads only the
        part of its prompt that differs)."""
        llm = getattr(self._verifier, "llm", self._verifier)
        release = getattr(getattr(llm, "scorer", None), "release", None)
        if callable(release):
            release()

    def uncovered_parts(self, claims: Sequence[GroundedClaim], question: str) -> list[str]:
        """The parts of a multi-part question that no accepted statement answers."""
        parts = question_parts(question)
        if len(parts) < 2:
            return []
        return [
            part
            for part in parts
            if not any(
                self.verifier.verify(c.statement, c.quote, part).answers is not False
                for c in claims
            )
        ]

    # -- answer assembly ------------------------------------------------------------------

    def _abstain(
        self,
        question: str,
        standalone: str,
        passages: Sequence[Passage],
        timings: Timings,
        reason: str,
        raw: str = "",
        *,
        stage: Stage,
        closest: GroundedClaim | None = None,
        gate_score: float | None = None,
    ) -> Answer:
        """Nothing shown as an answer. With ``closest`` (a sentence that states what the model
        wrote, which the answer gate did not confirm answers the question), that sentence is
        shown verbatim as evidence: the ``unconfirmed`` outcome."""
        floor = self.settings.retrieval.min_relevance
        see_also = tuple(p for p in passages[:2] if (p.similarity or 0.0) >= floor)
        evidence: tuple[Citation, ...] = ()
        text = ABSTENTION_TEXT
        if closest is not None:
            plain = replace(closest, shown=closest.quote, as_written=False, span=None)
            shown, evidence = self._compose([plain])
            text = f"{UNCONFIRMED_TEXT} {shown}"
        return Answer(
            text=text,
            abstained=True,
            passages=tuple(passages),
            standalone_question=standalone,
            question=question,
            timings=timings,
            raw_output=raw,
            see_also=see_also,
            reason=reason,
            evidence=evidence,
            outcome="unconfirmed" if evidence else "abstained",
            stage=stage,
            gate_score=gate_score,
            gate_threshold=self.answer_gate.threshold if gate_score is not None else None,
        )

    @staticmethod
    def _compose(
        claims: Sequence[GroundedClaim], uncovered: Sequence[str] = ()
    ) -> tuple[str, tuple[Citation, ...]]:
        """The answer text: per statement the short answer, then the sentence (as written when
        it adds nothing to the source, else the source sentence in quotes) and its marker;
        then the parts of the question the source does not answer."""
        markers: dict[str, int] = {}
        citations: list[Citation] = []
        sentences: list[str] = []
        for c in claims:
            key = c.passage.paragraph_id or f"{c.passage.source}#{c.passage.paragraph}"
            if key not in markers:
                markers[key] = len(markers) + 1
            m = markers[key]
            citations.append(
                Citation(
                    marker=m,
                    source=c.passage.source,
                    paragraph=c.passage.paragraph,
                    section=c.passage.section,
                    text=c.passage.text,
                    quote=c.quote,
                    quote_start=c.start,
                    quote_end=c.end,
                    answer_start=c.span[0] if c.span else -1,
                    answer_end=c.span[1] if c.span else -1,
                    page=c.passage.page,
                )
            )
            s = c.shown.strip()
            s = s if c.as_written else f"“{s}”"
            end = "" if s.endswith((".", "!", "?", "”", '"')) else "."
            lead = c.lead.strip()
            if c.as_written and len(lead) >= 0.8 * len(c.shown.strip(" .")):
                lead = ""  # the statement is itself the short answer: say it once
            sentences.append(f"{lead} — {s}{end} [{m}]" if lead else f"{s}{end} [{m}]")
        for part in uncovered:
            sentences.append(f"The source does not say: {part}")
        return " ".join(sentences), tuple(citations)

    # -- public ---------------------------------------------------------------------------

    def stream(self, question: str, history: History | None = None) -> Iterator[AnswerEvent]:
        """Progress events, then one ``final`` event with the verified ``Answer``."""
        t0 = time.perf_counter()
        question = validate_query(question, max_chars=self.settings.retrieval.max_query_chars)
        hist = validate_history(history)
        t_condense = 0.0
        standalone = question
        if hist:
            yield AnswerEvent("status", "Rewriting the follow-up as a standalone question…")
            standalone = self.condense(question, hist)
            t_condense = time.perf_counter() - t0
        yield AnswerEvent("status", "Searching the sources…", standalone_question=standalone)
        t1 = time.perf_counter()
        passages = self.retrieve(standalone)
        t_retrieval = time.perf_counter() - t1
        yield AnswerEvent(
            "passages",
            f"Found {len(passages)} paragraphs.",
            passages=tuple(passages),
            standalone_question=standalone,
        )
        score = relevance(passages)
        if score < self.settings.retrieval.min_relevance:
            timings = Timings(
                condense=t_condense, retrieval=t_retrieval, total=time.perf_counter() - t0
            )
            yield AnswerEvent(
                "final",
                answer=self._abstain(
                    question,
                    standalone,
                    passages,
                    timings,
                    f"low relevance ({score:.2f})",
                    stage="retrieval",
                ),
            )
            return
        excerpts = self.excerpts(standalone, passages)
        context = [e.passage for e in excerpts]
        yield AnswerEvent("status", "Reading the paragraphs…")
        chain = answer_prompt | self.llm | StrOutputParser()
        inputs = {"context": format_context([e.text for e in excerpts]), "question": standalone}
        prompt_tokens = sum(
            self.count_tokens(m.content) for m in answer_prompt.format_messages(**inputs)
        )
        t2 = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        failure = ""
        tokens = self._generate_text(chain, inputs)
        try:
            for token in tokens:
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(token)
                yield AnswerEvent("draft", token)
                if "\n" in token and left_the_format("".join(parts)):
                    break  # nothing after this line is read: stop generating
        except LLMTimeoutError as exc:
            # Keep what was generated: complete Quote/Answer pairs can still be verified.
            logger.warning("generation failed: %s", exc)
            failure = str(exc)
        finally:
            tokens.close()  # a generation stopped early is released here, in this thread
        raw = "".join(parts)
        t_gen = time.perf_counter() - t2
        yield AnswerEvent("status", "Checking every statement against the sources…")
        t3 = time.perf_counter()
        claims, scored = self.verify(raw, context, standalone) if raw.strip() else ([], [])
        if failure:
            # The last statement may be cut off mid-sentence: show the supporting sentences instead.
            claims = [replace(c, shown=c.quote, as_written=False) for c in claims]
        uncovered = self.uncovered_parts(claims, standalone) if claims else []
        self._release_checks()
        t_verify = time.perf_counter() - t3
        timings = Timings(
            condense=t_condense,
            retrieval=t_retrieval,
            first_token=first,
            generation=t_gen,
            total=time.perf_counter() - t0,
            verification=t_verify,
            prompt_tokens=prompt_tokens,
        )
        if not claims:
            stage: Stage = "reading"
            closest, best = None, None
            if failure:
                reason, stage = failure, "timeout"
            elif "NOT FOUND" in raw.upper():
                reason = "the model found no answer in the passages"
            elif scored:
                closest, best = max(scored, key=lambda cs: cs[1])
                reason = (
                    f"the answer gate scored the best statement {best:.2f} "
                    f"< threshold {self.answer_gate.threshold:.2f}"
                )
                stage = "gate"
            else:
                reason = "no sentence of the passages states what the model wrote"
            yield AnswerEvent(
                "final",
                answer=self._abstain(
                    question,
                    standalone,
                    passages,
                    timings,
                    reason,
                    raw,
                    stage=stage,
                    closest=closest,
                    gate_score=best,
                ),
            )
            return
        text, citations = self._compose(claims, uncovered)
        yield AnswerEvent(
            "final",
            answer=Answer(
                text=text,
                abstained=False,
                citations=citations,
                passages=tuple(passages),
                standalone_question=standalone,
                question=question,
                timings=timings,
                raw_output=raw,
                gate_score=max((x for _, x in scored), default=None),
                gate_threshold=self.answer_gate.threshold if scored else None,
            ),
        )

    def invoke(self, question: str, history: History | None = None) -> Answer:
        """The verified answer (runs ``stream`` to the end)."""
        final: Answer | None = None
        for event in self.stream(question, history):
            if event.kind == "final":
                final = event.answer
        assert final is not None
        return final


_CHAINS: dict[str, AnswerChain] = {}


def get_chain(settings: Settings | None = None) -> AnswerChain:
    """A cached chain for these settings (models load on first use)."""
    s = settings or Settings()
    key = s.model_dump_json()
    if key not in _CHAINS:
        _CHAINS[key] = AnswerChain(settings=s)
    return _CHAINS[key]


def ask(question: str, history: History | None = None, settings: Settings | None = None) -> Answer:
    """Answer ``question`` from the corpus, with verified paragraph citations, or abstain.

    Example:
        >>> from rag import ask
        >>> a = ask("Which institution is Dr. Tenzin Wangchuk affiliated with?")
        >>> a.abstained, a.text, a.citations[0].paragraph
    """
    return get_chain(settings).invoke(question, history)


def stream_answer(
    question: str, history: History | None = None, settings: Settings | None = None
) -> Iterator[AnswerEvent]:
    """Like ``ask``, yielding progress events; the last (``kind == "final"``) has the Answer."""
    return get_chain(settings).stream(question, history)
