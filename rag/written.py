"""What the model wrote, token by token, with each token's log-probability: how sure the reader
was of the words it chose (a signal of the answer gate).

``recording(llm)`` returns the model to generate with and the ``Written`` record it fills: for
the in-process llama.cpp model a logits processor that observes each step (greedy decoding, so
the token written is the most likely one); for an OpenAI-compatible server the ``logprobs`` it
streams with each chunk, read by a callback.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.runnables import Runnable


class Written:
    """The tokens of one generation and their log-probabilities, in order."""

    def __init__(self, detokenize: Any = None) -> None:
        self._detokenize = detokenize  # llama.cpp: token ids -> bytes
        self._ids: list[int] = []
        self._pieces: list[str] = []
        self.logprobs: list[float] = []
        self._decoded: tuple[int, list[str]] = (0, [])  # the ids' pieces, decoded once

    def add(self, piece: str, logprob: float) -> None:
        self._pieces.append(piece)
        self.logprobs.append(logprob)

    def add_id(self, token: int, logprob: float) -> None:
        self._ids.append(token)
        self.logprobs.append(logprob)

    @property
    def pieces(self) -> list[str]:
        """Each token's text (a character split across tokens goes to the token completing it)."""
        if self._detokenize is None:
            return self._pieces
        if self._decoded[0] != len(self._ids):  # each statement of an answer asks again
            pieces, done = [], ""
            for k in range(len(self._ids)):
                text = self._detokenize(self._ids[: k + 1]).decode("utf-8", errors="ignore")
                pieces.append(text[len(done) :])
                done = text
            self._decoded = (len(self._ids), pieces)
        return self._decoded[1]

    def least_likely(self, text: str) -> float:
        """The lowest log-probability among the tokens that wrote the first occurrence of
        ``text`` (stripped) in the output; of all tokens written when it is not found as such."""
        pieces = self.pieces
        output = "".join(pieces)
        text = text.strip()
        start = output.find(text) if text else -1
        if start < 0:
            return min(self.logprobs, default=0.0)
        end, pos, worst = start + len(text), 0, 0.0
        for piece, logprob in zip(pieces, self.logprobs, strict=True):
            if pos < end and pos + len(piece) > start:
                worst = min(worst, logprob)
            pos += len(piece)
        return worst


class _Observer:
    """A llama.cpp logits processor that leaves the logits as they are and records the most
    likely token and its log-probability at each step."""

    def __init__(self, written: Written) -> None:
        self.written = written

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        s = np.asarray(scores, dtype=np.float64)
        top = int(s.argmax())
        log_total = float(s[top]) + math.log(float(np.exp(s - s[top]).sum()))
        self.written.add_id(top, float(s[top]) - log_total)
        return scores


class _ServerLogprobs(BaseCallbackHandler):
    """Reads the ``logprobs`` an OpenAI-compatible server streams with each chunk."""

    def __init__(self, written: Written) -> None:
        self.written = written

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        message = getattr(chunk, "message", None)
        info = getattr(chunk, "generation_info", None) or getattr(message, "response_metadata", {})
        for item in ((info or {}).get("logprobs") or {}).get("content") or []:
            self.written.add(str(item.get("token", "")), float(item["logprob"]))


def recording(llm: BaseChatModel) -> tuple[Runnable, Written]:
    """``llm`` set to record what it writes, and the record (filled while it streams; empty
    for a model of another kind, such as a test's fake)."""
    from langchain_community.chat_models import ChatLlamaCpp

    if isinstance(llm, ChatLlamaCpp):
        from llama_cpp import LogitsProcessorList

        written = Written(llm.client.detokenize)
        return llm.bind(logits_processor=LogitsProcessorList([_Observer(written)])), written
    written = Written()
    if type(llm).__name__ == "ChatOpenAI":  # the [openai] extra's model
        return llm.bind(logprobs=True, top_logprobs=1).with_config(
            callbacks=[_ServerLogprobs(written)]
        ), written
    return llm, written
