"""The model's P(yes) for a yes/no question, read from its first reply token's log-probabilities.

``LlamaCppYesNoScorer`` uses the in-process llama.cpp model the generator uses (one copy, one
lock); ``OpenAIYesNoScorer`` asks an OpenAI-compatible server for ``top_logprobs``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from rag.errors import LLMError

YES_WORDS = ("yes", "Yes", "YES", " yes", " Yes")
NO_WORDS = ("no", "No", "NO", " no", " No")


class YesNoScorer(Protocol):
    """P(yes) / (P(yes) + P(no)) of the model's first reply token to ``messages``."""

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float: ...


def _normalised(p_yes: float, p_no: float) -> float:
    total = p_yes + p_no
    return 0.5 if total <= 0 else p_yes / total


class LlamaCppYesNoScorer:
    """P(yes) from a ``llama_cpp.Llama``: one forward pass, the logits of the next token.

    The logits are read with a logits processor, so the model needs no ``logits_all=True``
    (which would cost memory and time on every generation), and the prompt prefix shared with
    the previous call is not read again.
    """

    def __init__(self, llama: Any, lock: AbstractContextManager[Any], cache_size: int = 512):
        self._llama = llama
        self._lock = lock
        self._yes = self._first_tokens(YES_WORDS)
        self._no = self._first_tokens(NO_WORDS)
        self._cache: OrderedDict[str, float] = OrderedDict()
        self._cache_size = cache_size
        self.calls = 0  # forward passes actually run (cache misses)

    def _first_tokens(self, variants: Sequence[str]) -> list[int]:
        ids: set[int] = set()
        for v in variants:
            toks = self._llama.tokenize(v.encode(), add_bos=False, special=False)
            if len(toks) == 1:
                ids.add(int(toks[0]))
        if not ids:
            raise LLMError("the model's vocabulary has no single-token yes/no")
        return sorted(ids)

    def p_yes(self, messages: Sequence[dict[str, str]]) -> float:
        key = repr(list(messages))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from llama_cpp import LogitsProcessorList

        seen: list[Any] = []

        def grab(input_ids: Any, scores: Any) -> Any:
            if not seen:
                seen.append(scores.copy())
            return scores

        with self._lock:
            self._llama.create_chat_completion(
                messages=list(messages),
                max_tokens=1,
                temperature=0.0,
                top_k=1,
                logits_processor=LogitsProcessorList([grab]),
            )
        self.calls += 1
        if not seen:
            raise LLMError("llama.cpp returned no logits for the verification question")
        logits = seen[0]
        top = float(logits.max())
        log_z = top + math.log(float(sum(math.exp(float(x) - top) for x in logits)))
        p_yes = sum(math.exp(float(logits[i]) - log_z) for i in self._yes)
        p_no = sum(math.exp(float(logits[i]) - log_z) for i in self._no)
        score = _normalised(p_yes, p_no)
        self._cache[key] = score
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return score


class OpenAIYesNoScorer:
    """P(yes) from an OpenAI-compatible server's ``top_logprobs`` for a one-token reply."""

    def __init__(self, chat_model: Any) -> None:
        self._model = chat_model.bind(max_tokens=1, logprobs=True, top_logprobs=10)

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
