"""Faithfulness judges: is a statement supported by the paragraph it cites?

* ``DeterministicJudge`` (judge name ``deterministic``): the quote occurs verbatim in the cited
  paragraph and the statement adds no unsupported content word
  (``rag.citations.unsupported_words``). Always available, instant.
* ``LLMJudge`` (judge name ``llm:<model>``): RAGAS-style faithfulness. The model is asked, for
  each statement, whether the cited paragraph supports it, and answers yes or no. It uses the
  embedded model (``rag.llm.get_llm``) by default, or any OpenAI-compatible endpoint.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from evals.metrics import statement_supported

logger = logging.getLogger(__name__)


@runtime_checkable
class Judge(Protocol):
    """Decides whether one statement is supported by its cited paragraph."""

    name: str

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        """True/False, or None when the judge could not decide (error, unparseable reply)."""
        ...


class DeterministicJudge:
    """Verbatim quote + content-word support, no model."""

    name = "deterministic"

    def __init__(self, max_soft: int = 0) -> None:
        from rag.citations import unsupported_words

        self._unsupported = unsupported_words
        self.max_soft = max_soft

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        return statement_supported(
            statement, quote, paragraph, question, self._unsupported, max_soft=self.max_soft
        )


JUDGE_SYSTEM = """You check whether a statement is supported by a source paragraph.
Answer "yes" if everything the statement claims is stated in or directly implied by the \
paragraph, and "no" otherwise. Use only the paragraph, not outside knowledge. \
Reply with one word: yes or no."""

JUDGE_HUMAN = """Paragraph:
\"\"\"{paragraph}\"\"\"

Statement: {statement}

Is the statement supported by the paragraph? Reply yes or no."""

_YES = re.compile(r"^\W*(yes|supported|true)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|not supported|unsupported|false)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """'yes' -> True, 'no' -> False, anything else -> None."""
    t = text.strip()
    if _YES.match(t):
        return True
    if _NO.match(t):
        return False
    low = t.lower()
    has_yes, has_no = bool(re.search(r"\byes\b", low)), bool(re.search(r"\bno\b", low))
    if has_yes != has_no:
        return has_yes
    return None


class LLMJudge:
    """Asks a chat model (LangChain ``BaseChatModel``) for a yes/no verdict per statement."""

    def __init__(self, llm: Any, name: str, lock: Callable[[], Any] | None = None) -> None:
        self.llm = llm
        self.name = name
        self._lock = lock

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
    ) -> LLMJudge:
        """The embedded model of ``settings`` (shared with the chain, serialised by its lock),
        or an OpenAI-compatible endpoint when ``base_url`` is given."""
        llm: Any
        if base_url:
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(  # type: ignore[call-arg]
                base_url=base_url,
                model=model or "local",
                api_key=api_key or "not-needed",  # type: ignore[arg-type]
                temperature=0,
                max_tokens=4,
                timeout=60,
                max_retries=1,
            )
            return cls(llm, f"llm:{model or 'local'}@{base_url}")
        from rag.llm import get_llm, llm_lock

        llm = get_llm(settings)
        s = settings.llm
        if s.backend == "openai":
            label = f"llm:{s.model}@{s.base_url}"
        else:
            label = f"llm:{(s.model_path.name if s.model_path else 'qwen2.5-coder-1.5b-q4_k_m')}"
        return cls(llm, label, lock=lambda: llm_lock(settings))

    def supported(self, statement: str, quote: str, paragraph: str, question: str) -> bool | None:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(
                JUDGE_HUMAN.format(paragraph=paragraph.strip(), statement=statement.strip())
            ),
        ]
        try:
            if self._lock is not None:
                with self._lock():
                    reply = self.llm.invoke(messages, max_tokens=4)
            else:
                reply = self.llm.invoke(messages)
        except Exception as exc:  # a judge failure must not stop the run
            logger.warning("LLM judge failed: %s", exc)
            return None
        return parse_verdict(str(getattr(reply, "content", reply)))
