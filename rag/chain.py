"""The answer chain, one step after another:

condense (a follow-up into a standalone question) -> retrieve (paragraphs) -> select (the
sentences the model reads, under a token budget) -> read (per fact, the model names a paragraph
and the fewest words of it that answer) -> check (each grounded in a source sentence; the answer
gate decides whether it answers) -> compose (answered, unconfirmed evidence, or abstention).

Nothing the model writes reaches the user unchecked: streamed ``draft`` events are progress
only; the ``final`` event carries the checked ``Answer``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from pydantic import SecretStr

from rag.checking import Checker, checker_for
from rag.citations import left_the_format
from rag.compose import abstained, final_answer
from rag.embedding import Remembering
from rag.errors import InvalidQueryError, LLMTimeoutError
from rag.llm import get_llm, llm_lock, stream_tokens
from rag.prompts import answer_prompt, condense_prompt, format_context, format_history
from rag.retrieval import Retriever, get_retriever, relevance, validate_query
from rag.selection import Excerpt, select
from rag.settings import Settings
from rag.tokens import token_counter
from rag.types import Answer, AnswerEvent, Passage, Timings
from rag.verification import Verifier
from rag.verification.answer_gate import AnswerGate, Pick
from rag.written import Written, recording

logger = logging.getLogger(__name__)

History = Sequence[dict[str, str]]


def validate_history(history: History | None) -> list[dict[str, str]]:
    """History as a list of {"role": "user"|"assistant", "content": str}."""
    out = []
    for i, msg in enumerate(history or []):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise InvalidQueryError(
                f"history item {i} must be {{'role': 'user'|'assistant', 'content': str}}"
            )
        out.append({"role": str(msg["role"]), "content": str(msg.get("content", ""))})
    return out


class Stopwatch:
    """Seconds since the question arrived, and for each step (a lap) since the last one."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return seconds

    def total(self) -> float:
        return time.perf_counter() - self.start

    def since_start(self, clock: float | None) -> float | None:
        return clock - self.start if clock is not None else None


def drafts(tokens: Iterator[str]) -> Generator[AnswerEvent, None, tuple[str, str, float | None]]:
    """A ``draft`` event per token; returns (output, failure, clock at the first token).

    Stops generating at the first line that leaves the answer format (nothing after it is
    read). A timeout keeps what was written. The generation is released here, in this thread.
    """
    parts: list[str] = []
    failure, first = "", None
    try:
        for token in tokens:
            first = first or time.perf_counter()
            parts.append(token)
            yield AnswerEvent("draft", token)
            if "\n" in token and left_the_format("".join(parts)):
                break
    except LLMTimeoutError as exc:
        logger.warning("generation failed: %s", exc)
        failure = str(exc)
    finally:
        tokens.close()  # type: ignore[attr-defined]
    return "".join(parts), failure, first


@dataclass(frozen=True)
class Reading:
    """What the model wrote for one question: the output, its tokens' log-probabilities, why it
    stopped early ("" when it did not), the prompt's tokens, the clock at its first token."""

    output: str
    written: Written
    failure: str
    prompt_tokens: int
    first: float | None


class AnswerChain:
    """Grounded question answering with checked paragraph citations.

    Example:
        >>> AnswerChain(settings=Settings()).invoke("Where was the Joint Communiqué signed?")
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        retriever: Retriever | None = None,
        llm: BaseChatModel | None = None,
        verifier: Verifier | None = None,
        answer_gate: AnswerGate | None = None,
        pick: Pick | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._retriever = retriever
        self._llm = llm
        # An injected model's concurrency is its caller's; the shared local model's is ours.
        self._lock = nullcontext if llm is not None else lambda: llm_lock(self.settings)
        self._checks = dict(verifier=verifier, gate=answer_gate, pick=pick)
        self._checker: Checker | None = None

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:  # connects on first use
            self._retriever = get_retriever(self.settings)
        return self._retriever

    @property
    def llm(self) -> BaseChatModel:
        if self._llm is None:  # loads on first use
            self._llm = get_llm(self.settings)
        return self._llm

    @functools.cached_property
    def sentence_embedder(self) -> Remembering:
        """The retriever's embedder, remembering the sentences it embedded for selection and
        grounding (the same paragraphs come back question after question)."""
        return Remembering(self.retriever.embedder)

    @property
    def checker(self) -> Checker:
        if self._checker is None:
            kw = dict(llm=self.llm, embedder=self.sentence_embedder, **self._checks)
            self._checker = checker_for(self.settings, **kw)  # type: ignore[arg-type]
        return self._checker

    @functools.cached_property
    def count_tokens(self) -> Callable[[str], int]:
        """Tokens the model reads for a text (its own tokenizer, or tiktoken for a server)."""
        return token_counter(self.llm, self.settings.llm.model)

    def generate(self, runnable: Any, inputs: dict[str, Any]) -> Iterator[str]:
        lock: AbstractContextManager[Any] = self._lock()
        return stream_tokens(runnable, inputs, llm=self.llm, lock=lock, settings=self.settings)

    # -- the steps, in order ----------------------------------------------------------------

    def condense(self, question: str, history: History) -> str:
        """Rewrite a follow-up into a standalone question (unchanged when there is no history)."""
        if not history:
            return question
        chain = condense_prompt | self.llm | StrOutputParser()
        inputs = {"history": format_history(history), "question": question}
        text = "".join(self.generate(chain, inputs)).strip()
        rewritten = " ".join(text.strip('"').split()).removeprefix("Standalone question:").strip()
        # A small model sometimes answers instead of rewriting: fall back to the question.
        if not rewritten or len(rewritten) > max(300, 4 * len(question)) or "\n" in text:
            return question
        return rewritten

    def retrieve(self, query: str) -> list[Passage]:
        return self.retriever.search(query, k=self.settings.retrieval.k)

    def excerpts(self, question: str, passages: Sequence[Passage]) -> list[Excerpt]:
        """What the model reads: the sentences most likely to answer, under the token budget."""
        return select(
            question,
            passages[: self.settings.llm.max_context_passages],
            embedder=self.sentence_embedder,
            count_tokens=self.count_tokens,
            budget=self.settings.llm.context_tokens,
        )

    def read(
        self, question: str, excerpts: Sequence[Excerpt]
    ) -> Generator[AnswerEvent, None, Reading]:
        """Draft events while the model writes; returns its ``Reading``. A timeout keeps what
        was written: complete statements can still be checked."""
        inputs = {"context": format_context([e.text for e in excerpts]), "question": question}
        prompt = answer_prompt.format_messages(**inputs)
        llm, written = recording(self.llm)
        tokens = self.generate(answer_prompt | llm | StrOutputParser(), inputs)
        output, failure, first = yield from drafts(tokens)
        n_prompt = sum(self.count_tokens(str(m.content)) for m in prompt)
        return Reading(output, written, failure, n_prompt, first)

    # -- public ---------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the in-process model and read the fixed parts of its prompts once (the answer
        check's worked examples, then the answer prompt's instructions and example), so that
        the first question reads only its own tokens: ~800 tokens, a quarter of a minute on a
        slow CPU. The UI and the API server call it at start; a no-op for a model server."""
        from langchain_community.chat_models import ChatLlamaCpp

        if self.settings.llm.backend != "llamacpp" or not isinstance(self.llm, ChatLlamaCpp):
            return  # a server keeps its own cache; an injected model is its caller's
        checker = self.checker
        if checker.checks is not None and checker.scorer is not None:
            checker.checks.answer_score("", "")
            checker.scorer.release()
        inputs = {"context": format_context([]), "question": ""}
        runnable = answer_prompt | self.llm.bind(max_tokens=1) | StrOutputParser()
        "".join(self.generate(runnable, inputs))

    def stream(self, question: str, history: History | None = None) -> Iterator[AnswerEvent]:
        """Progress events, then one ``final`` event with the checked ``Answer``."""
        clock = Stopwatch()
        question = validate_query(question, max_chars=self.settings.retrieval.max_query_chars)
        hist = validate_history(history)
        if hist:
            yield AnswerEvent("status", "Rewriting the follow-up as a standalone question…")
        standalone = self.condense(question, hist)
        t_condense = clock.lap()
        yield AnswerEvent("status", "Searching the sources…", standalone_question=standalone)
        passages = self.retrieve(standalone)
        t_retrieval = clock.lap()
        yield AnswerEvent(
            "passages",
            f"Found {len(passages)} paragraphs.",
            passages=tuple(passages),
            standalone_question=standalone,
        )
        common = dict(question=question, standalone=standalone, passages=passages)
        floor = self.settings.retrieval.min_relevance
        # Off topic: far from every passage by the embedder, and naming nothing (a name or a
        # number) that only some passages hold; the embedder knows few rare names.
        if (score := relevance(passages)) < floor and not self.retriever.named_terms(standalone):
            timings = Timings(t_condense, t_retrieval, total=clock.total())
            reason = f"low relevance ({score:.2f}) and no name of the question in the sources"
            answer = abstained(
                **common, timings=timings, reason=reason, stage="retrieval", min_relevance=floor
            )
            yield AnswerEvent("final", answer=answer)
            return
        excerpts = self.excerpts(standalone, passages)
        yield AnswerEvent("status", "Reading the paragraphs…")
        clock.lap()  # selecting the excerpts counts in the total only
        reading = yield from self.read(standalone, excerpts)
        t_generation = clock.lap()
        yield AnswerEvent("status", "Checking every statement against the sources…")
        wanted = self.retriever.distinctive_terms(standalone)
        checked = self.checker.check(
            reading.output,
            excerpts,
            standalone,
            wanted,
            written=reading.written,
            pick=not reading.failure,
        )
        timings = Timings(
            condense=t_condense,
            retrieval=t_retrieval,
            first_token=clock.since_start(reading.first),
            generation=t_generation,
            total=clock.total(),
            verification=clock.lap(),
            prompt_tokens=reading.prompt_tokens,
        )
        answer = final_answer(
            checked,
            reading.output,
            reading.failure,
            timings=timings,
            min_relevance=floor,
            **common,
        )
        yield AnswerEvent("final", answer=answer)

    def invoke(self, question: str, history: History | None = None) -> Answer:
        """The checked answer (runs ``stream`` to the end)."""
        final = [e.answer for e in self.stream(question, history) if e.kind == "final"]
        assert final and final[-1] is not None
        return final[-1]


_CHAINS: dict[str, AnswerChain] = {}
_CHAINS_LOCK = threading.Lock()


def _plain(value: Any) -> Any:
    """Settings as plain values, secrets revealed (two keys must not share a cached chain)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def get_chain(settings: Settings | None = None) -> AnswerChain:
    """A cached chain for these settings (models load on first use)."""
    s = settings or Settings()
    key = json.dumps(_plain(s.model_dump()), sort_keys=True, default=str)
    with _CHAINS_LOCK:
        if key not in _CHAINS:
            _CHAINS[key] = AnswerChain(settings=s)
        return _CHAINS[key]


def warm_up_in_background(settings: Settings) -> threading.Thread:
    """``get_chain(settings).warm_up()`` in a daemon thread (servers, at start). A failure is
    logged only: the first question meets it again and reports it."""

    def run() -> None:
        try:
            get_chain(settings).warm_up()
        except Exception as exc:  # the first question reports it to its user
            logger.warning("warm-up failed: %s", exc)

    thread = threading.Thread(target=run, name="rag-warm-up", daemon=True)
    thread.start()
    return thread


def ask(question: str, history: History | None = None, settings: Settings | None = None) -> Answer:
    """Answer ``question`` from the corpus, with checked paragraph citations, or abstain.

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
