"""``LlamaCppYesNoScorer`` against a fake llama.cpp model: verification borrows the generator's
context and ``release()`` gives it back, so the next answer re-reads only what changed."""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import types
from typing import Any

import numpy as np
import pytest

from rag.verification.scoring import LlamaCppYesNoScorer

VOCAB = 64


class FakeContext:
    """What llama.cpp keeps between calls: the tokens read (the KV cache) and the last logits."""

    def __init__(self) -> None:
        self.ctx = self  # the handle the llama_state_* functions receive
        self.kv: list[int] = []
        self.logits = (ctypes.c_float * VOCAB)()

    def get_logits(self) -> Any:
        return ctypes.cast(self.logits, ctypes.POINTER(ctypes.c_float))


class FakeLlama:
    """A word-level ``llama_cpp.Llama``: one token per word; the logits favour "yes" when the
    last word read is "yes?" and "no" otherwise."""

    metadata = {"tokenizer.chat_template": "{{ messages }}"}

    def __init__(self) -> None:
        self.words: dict[str, int] = {"<bos>": 1, "<eos>": 2}
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0
        self._ctx = FakeContext()
        self._model = types.SimpleNamespace(token_get_text=lambda t: self.text(t))
        self.read: list[int] = []  # every token evaluated, in order
        self.batches: list[list[int]] = []  # every eval call's tokens

    def text(self, token: int) -> str:
        return next(w for w, i in self.words.items() if i == token)

    def token_bos(self) -> int:
        return 1

    def token_eos(self) -> int:
        return 2

    def n_vocab(self) -> int:
        return VOCAB

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        ids = [self.words.setdefault(w, len(self.words) + 1) for w in text.decode().split()]
        return [1, *ids] if add_bos else ids

    def eval(self, tokens: list[int]) -> None:
        self.read += tokens
        self.batches.append(list(tokens))
        start = self.n_tokens
        self.input_ids[start : start + len(tokens)] = tokens
        self.n_tokens = start + len(tokens)
        self._ctx.kv = self.input_ids[: self.n_tokens].tolist()
        wanted = self.words["yes"] if tokens[-1] == self.words.get("yes?") else self.words["no"]
        for i in range(VOCAB):
            self._ctx.logits[i] = 20.0 if i == wanted else 0.0

    def generate(self, prompt: str) -> None:
        """What the generator does: reuse the common prefix of the context, read the rest."""
        tokens = self.tokenize(prompt.encode())
        kept = 0
        for a, b in zip(self.input_ids[: self.n_tokens].tolist(), tokens, strict=False):
            if a != b:
                break
            kept += 1
        self.n_tokens = kept
        self.eval(tokens[kept:])


def _fake_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    """``llama_cpp``'s state functions and chat formatter, over ``FakeContext``."""

    def get_size(ctx: FakeContext) -> int:
        return len(json.dumps(ctx.kv).encode())

    def get_data(ctx: FakeContext, buf: Any, size: int) -> int:
        data = json.dumps(ctx.kv).encode()
        ctypes.memmove(buf, data, len(data))
        return len(data)

    def set_data(ctx: FakeContext, raw: Any, size: int) -> int:
        ctx.kv = json.loads(bytes(raw)[:size])
        return size

    class Formatter:
        def __init__(self, **_: Any) -> None:
            pass

        def __call__(self, messages: list[dict[str, str]]) -> Any:
            return types.SimpleNamespace(prompt=" ".join(m["content"] for m in messages))

    fake = types.ModuleType("llama_cpp")
    fake.llama_state_get_size = get_size  # type: ignore[attr-defined]
    fake.llama_state_get_data = get_data  # type: ignore[attr-defined]
    fake.llama_state_set_data = set_data  # type: ignore[attr-defined]
    chat_format = types.ModuleType("llama_cpp.llama_chat_format")
    chat_format.Jinja2ChatFormatter = Formatter  # type: ignore[attr-defined]
    fake.llama_chat_format = chat_format  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_chat_format", chat_format)


@pytest.fixture
def llama(monkeypatch: pytest.MonkeyPatch) -> FakeLlama:
    _fake_llama_cpp(monkeypatch)
    model = FakeLlama()
    model.tokenize(b"yes no")  # the answer words are tokens of the vocabulary
    return model


ANSWER_PROMPT = "Answer from these paragraphs : the institute was founded in 1987 ."
CHECKS = [
    [{"role": "user", "content": "Is this so ? yes?"}],
    [{"role": "user", "content": "Is this other thing so ? no?"}],
]


def _context(llama: FakeLlama) -> list[int]:
    return llama.input_ids[: llama.n_tokens].tolist()


def test_release_gives_the_generator_its_context_back(llama: FakeLlama) -> None:
    scorer = LlamaCppYesNoScorer(llama, threading.Lock())
    llama.generate(ANSWER_PROMPT)
    answer_context = _context(llama)

    assert [scorer.p_yes(m) for m in CHECKS] == [
        pytest.approx(1.0, abs=0.01),
        pytest.approx(0.0, abs=0.01),
    ]
    assert _context(llama) != answer_context  # the checks used the generator's model
    scorer.release()

    assert _context(llama) == answer_context and llama._ctx.kv == answer_context
    read = len(llama.read)
    llama.generate(ANSWER_PROMPT + " Who founded it ?")
    assert len(llama.read) - read == 4  # only the new words are read again


def test_release_leaves_a_context_someone_else_has_used_since(llama: FakeLlama) -> None:
    scorer = LlamaCppYesNoScorer(llama, threading.Lock())
    llama.generate(ANSWER_PROMPT)
    scorer.p_yes(CHECKS[0])
    llama.generate("Another question entirely")  # another answer ran after the checks
    other = _context(llama)

    scorer.release()

    assert _context(llama) == other and llama._ctx.kv == other


def test_release_without_a_check_and_twice_changes_nothing(llama: FakeLlama) -> None:
    scorer = LlamaCppYesNoScorer(llama, threading.Lock())
    llama.generate(ANSWER_PROMPT)
    answer_context = _context(llama)
    scorer.release()
    assert _context(llama) == answer_context

    scorer.p_yes(CHECKS[0])
    scorer.release()
    scorer.release()
    assert _context(llama) == answer_context and llama._ctx.kv == answer_context


EXAMPLES = [
    {"role": "user", "content": "Worked example : is the sky green ?"},
    {"role": "assistant", "content": "no"},
]


def test_every_check_reads_its_question_in_one_batch_after_the_same_fixed_part(
    llama: FakeLlama,
) -> None:
    # llama.cpp rounds differently for one token than for many: P(yes) must not depend on how
    # much of the prompt the previous check or the generator happened to share with it.
    scorer = LlamaCppYesNoScorer(llama, threading.Lock(), cache_size=0)
    fixed = " ".join(m["content"] for m in EXAMPLES).split()
    asks = [
        "Is this so ? yes?",
        "Is this so ? no?",  # shares all but its last word with the check before
        "Is this so ? yes?",
    ]
    for n, question in enumerate(asks):
        if n == 2:
            llama.generate(ANSWER_PROMPT)  # an answer used the model between checks
        scorer.p_yes([*EXAMPLES, {"role": "user", "content": question}])
        last = llama.batches[-1]
        assert [llama.text(t) for t in last] == question.split()
        assert [llama.text(t) for t in _context(llama)[: -len(last)]] == ["<bos>", *fixed]
    # The fixed part itself was read once, before the first check.
    assert sum(b == llama.tokenize(" ".join(fixed).encode()) for b in llama.batches) == 1
