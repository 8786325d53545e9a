"""Verification: does an evidence sentence state a statement, and does it answer the question?

Example:
    >>> from rag.verification import get_verifier
    >>> v = get_verifier("lexical")
    >>> v.verify("Its main office is in Porto.", "Its main office is in Porto, and a second office opened in Lyon in 2015.")
    Verdict(supported=True, answers=None, score=1.0, stage='lexical', reason='adds nothing to the evidence')
"""  # noqa: E501

from __future__ import annotations

from rag.settings import Settings
from rag.verification.base import Verdict, Verifier
from rag.verification.calibration import Thresholds, load_thresholds
from rag.verification.cascade import CascadeVerifier, LexicalVerifier
from rag.verification.lexical import adds_nothing, answer_span, lexical_decision
from rag.verification.llm import LLMVerifier
from rag.verification.scoring import LlamaCppYesNoScorer, OpenAIYesNoScorer, YesNoScorer

__all__ = [
    "CascadeVerifier",
    "LLMVerifier",
    "LexicalVerifier",
    "LlamaCppYesNoScorer",
    "OpenAIYesNoScorer",
    "Thresholds",
    "Verdict",
    "Verifier",
    "YesNoScorer",
    "adds_nothing",
    "answer_span",
    "build_verifier",
    "get_verifier",
    "lexical_decision",
    "load_thresholds",
    "scorer_for",
]

NAMES = ("lexical", "llm", "default")


def scorer_for(llm: object, settings: Settings) -> YesNoScorer | None:
    """A P(yes) scorer over the chat model ``llm`` (the generator's own instance), or None
    when it exposes no log-probabilities (a test fake)."""
    from langchain_community.chat_models import ChatLlamaCpp

    from rag.llm import llm_lock

    if isinstance(llm, ChatLlamaCpp):
        return LlamaCppYesNoScorer(llm.client, llm_lock(settings))
    if type(llm).__name__ == "ChatOpenAI":  # langchain-openai is an optional extra
        return OpenAIYesNoScorer(llm)
    return None


def get_verifier(name: str = "default", settings: Settings | None = None) -> Verifier:
    """A verifier by name: "lexical" (words only), "llm" (the model's P(yes) only) or
    "default" (lexical first, the model where words cannot decide). The model is the
    generator's own instance (``rag.llm.get_llm``), shared under its lock."""
    if name not in NAMES:
        raise ValueError(f"unknown verifier {name!r}; choose one of {', '.join(NAMES)}")
    if name == "lexical":
        return LexicalVerifier()
    from rag.llm import get_llm

    settings = settings or Settings()
    scorer = scorer_for(get_llm(settings), settings)
    if scorer is None:
        raise ValueError(f"the {settings.llm.backend} model gives no log-probabilities")
    return build_verifier(name, scorer, settings)


def build_verifier(name: str, scorer: YesNoScorer | None, settings: Settings) -> Verifier:
    """The verifier ``name`` over ``scorer`` (words only when there is no scorer)."""
    if name == "lexical" or scorer is None:
        return LexicalVerifier()
    llm = LLMVerifier(scorer, load_thresholds())
    if name == "llm":
        return llm
    return CascadeVerifier(llm, check_support=settings.verification.model_support_check)
