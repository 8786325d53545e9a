"""The model's P(yes) for a yes/no question, read from its first reply token's log-probabilities.

``LlamaCppYesNoScorer`` uses the in-process llama.cpp model the generator uses (one copy, one
lock); ``OpenAIYesNoScorer`` asks an OpenAI-compatible server for ``top_logprobs``.
"""

from __future__ import annotations

import ctypes
import math
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from rag.errors import LLMError

YES_WORDS = ("yes", "Yes", "YES", " yes", " Yes")
NO_WORDS = ("no", "No", "NO", " no", " No")


class YesNoScorer(Protocol):
    """P(yes) / (P(yes) + P(no)) of the model's first reply token to ``messages``."""

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float: ...

    def release(self) -> None:
        """Called after a round of checks: give the model's context back to the generator."""


def _normalised(p_yes: float, p_no: float) -> float:
    total = p_yes + p_no
    return 0.5 if total <= 0 else p_yes / total


class LlamaCppYesNoScorer:
    """P(yes) from a ``llama_cpp.Llama``: one forward pass, the logits of the next token.

    The prompt is rendered with the model's own chat template and evaluated directly
    (``Llama.eval``); the next-token logits are read from the context, so the model needs no
    ``logits_all=True`` and nothing is sampled or cached by the completion API (whose prompt
    cache copies a 300 MB logits array per call).

    Every check is read from the same point: the conversation before its last message (the
    fixed worked examples) is read once and kept as a llama.cpp state (a few MB); each check
    restores it and reads its last message in one batch. llama.cpp's CPU kernels round
    differently for one token than for many, so reusing whatever prefix the previous check
    happened to share would make P(yes) depend on the order of the checks; this way it is a
    function of the messages alone.
    """

    def __init__(self, llama: Any, lock: AbstractContextManager[Any], cache_size: int = 512):
        self._llama = llama
        self._lock = lock
        self._yes = self._first_tokens(YES_WORDS)
        self._no = self._first_tokens(NO_WORDS)
        self._cache: OrderedDict[str, float] = OrderedDict()
        self._cache_size = cache_size
        self._snapshot: tuple[list[int], bytes] | None = None  # the fixed part, as read
        self._fixed: dict[str, list[int]] = {}  # the fixed part's tokens, by its messages
        # The generator's context as the first check of a round found it, put back by
        # ``release`` so the next answer re-reads only what differs from the last prompt.
        self._resume: tuple[list[int], bytes] | None = None
        self._own: list[int] = []  # the tokens the last check left in the context
        self._format = self._formatter()
        self.calls = 0  # forward passes actually run (cache misses)

    def _formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError("the GGUF model has no chat template to ask verification questions")
        model = self._llama._model

        def text(token: int) -> str:
            return str(model.token_get_text(token)) if token != -1 else ""

        return Jinja2ChatFormatter(
            template=template,
            eos_token=text(self._llama.token_eos()),
            bos_token=text(self._llama.token_bos()),
        )

    def _first_tokens(self, variants: Sequence[str]) -> list[int]:
        ids: set[int] = set()
        for v in variants:
            toks = self._llama.tokenize(v.encode(), add_bos=False, special=False)
            if len(toks) == 1:
                ids.add(int(toks[0]))
        if not ids:
            raise LLMError("the model's vocabulary has no single-token yes/no")
        return sorted(ids)

    @staticmethod
    def _common(a: Sequence[int], b: Sequence[int]) -> int:
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        return n

    def _state(self) -> bytes:
        import llama_cpp

        ctx = self._llama._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_get_data(ctx, buf, size)
        return ctypes.string_at(buf, n)  # one copy (slicing a ctypes array builds a list)

    def _set_state(self, tokens: list[int], data: bytes) -> None:
        import llama_cpp

        llama = self._llama
        raw = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        llama_cpp.llama_state_set_data(llama._ctx.ctx, raw, len(data))
        llama.input_ids[: len(tokens)] = tokens
        llama.n_tokens = len(tokens)

    def release(self) -> None:
        """Put back the context the generator left before this round of checks (its prompt
        prefix is then reused by the next answer), unless someone used the model since."""
        with self._lock:
            resume, self._resume = self._resume, None
            llama = self._llama
            if resume is None or llama.input_ids[: llama.n_tokens].tolist() != self._own:
                return
            self._set_state(*resume)
            self._own = []

    def _logits(self, tokens: list[int], fixed: int) -> Any:
        """The next-token logits after ``tokens``, whose first ``fixed`` are the fixed part."""
        llama = self._llama
        current = llama.input_ids[: llama.n_tokens].tolist()
        if current and current != self._own:  # the generator's context: keep it for release()
            self._resume = (current, self._state())
        prefix = tokens[:fixed]
        if self._snapshot is None or self._snapshot[0] != prefix:
            llama.n_tokens = 0
            if prefix:
                llama.eval(prefix)
            self._snapshot = (prefix, self._state())
        elif current != self._own or current[:fixed] != prefix:
            self._set_state(*self._snapshot)
        llama.n_tokens = fixed  # the context holds the fixed part as the snapshot read it
        llama.eval(tokens[fixed:])
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).copy()
        self._own = list(tokens)
        return logits

    def _tokens(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        """The prompt's tokens and how many of them belong to the conversation before its last
        message (the point every check is read from)."""

        def tokens(msgs: list[dict[str, str]]) -> list[int]:
            prompt = self._format(messages=msgs).prompt
            return list(self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

        full = tokens(messages)
        key = repr(messages[:-1])
        if key not in self._fixed:
            self._fixed = {key: tokens(messages[:-1]) if len(messages) > 1 else []}
        fixed = min(self._common(self._fixed[key], full), len(full) - 1)
        return full, fixed

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float:
        key = repr(list(messages))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        tokens, fixed = self._tokens(list(messages))
        with self._lock:
            logits = self._logits(tokens, fixed)
        self.calls += 1
        top = float(logits.max())
        z = float(np.exp(logits - top).sum())
        p_yes = sum(float(np.exp(logits[i] - top)) for i in self._yes) / z
        p_no = sum(float(np.exp(logits[i] - top)) for i in self._no) / z
        score = _normalised(p_yes, p_no)
        self._cache[key] = score
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return score


class OpenAIYesNoScorer:
    """P(yes) from an OpenAI-compatible server's ``top_logprobs`` for a one-token reply."""

    def __init__(self, chat_model: Any) -> None:
        self._model = chat_model.bind(max_tokens=1, logprobs=True, top_logprobs=10)

    def release(self) -> None:
        """Nothing to give back: the server keeps its own cache."""

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float:
        msg = self._model.invoke([(m["role"], m["content"]) for m in messages])
        content = (msg.response_metadata.get("logprobs") or {}).get("content") or []
        if not content:
            raise LLMError("the model server returned no log-probabilities (top_logprobs)")
        p_yes = p_no = 0.0
        for alt in content[0].get("top_logprobs", []):
            word = str(alt.get("token", "")).strip().lower()
            if word == "yes":
                p_yes += math.exp(float(alt["logprob"]))
            elif word == "no":
                p_no += math.exp(float(alt["logprob"]))
        return _normalised(p_yes, p_no)
