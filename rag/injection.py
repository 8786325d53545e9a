"""Recognise text that addresses the assistant (prompt injection): it is never evidence."""

from __future__ import annotations

import re

from rag.text import fold

_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|rules?|prompts?|context|sources?)\b"  # noqa: E501
    r"|\b(?:system|assistant)\s*(?:prompt)?\s*:"
    r"|\b(?:reply|respond|answer|output)\s+(?:only\s+)?(?:with|in)\s+(?:the\s+)?(?:single\s+)?(?:word|json|exactly)\b"  # noqa: E501
    r"|\byou\s+(?:are|must|should)\s+(?:now\s+)?(?:an?\s+)?(?:ai|assistant|language model|chatbot)\b"  # noqa: E501
    r"|\b(?:print|reveal|show)\s+(?:your|the)\s+(?:system\s+)?prompt\b"
    # a rule for the assistant's answers, or about this product's own answer protocol
    r"|\b(?:answers?|repl(?:y|ies)|responses?)\b[^.]{0,60}\bmust\s+(?:be\s+exactly|say)\b"
    r"|\bnever\s+(?:write|say|answer|reply)\s+[\"'“]?not\s+found\b",
    re.IGNORECASE,
)


def looks_like_instruction(text: str) -> bool:
    """True for text that addresses the assistant (prompt injection), not the reader."""
    return bool(_INSTRUCTION.search(fold(text)))
