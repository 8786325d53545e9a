"""What a question asks: the parts of a multi-part question, each read and answered on its own
(``rag.selection`` gives each part its best sentences; ``rag.checking`` answers each part)."""

from __future__ import annotations

import re

_WH_WORD = r"(?:who|whom|whose|what|when|where|which|why|how)\b"
# A new part opens at "and" (after a comma or not) with a question word, which may follow a
# preposition ("and in what year", "and until when"). A comma alone opens none: ", which" and
# "When …, what" are clauses of one question.
_PART_SPLIT = re.compile(
    r"\s*,?\s*\band\s+(?=(?:(?:in|at|on|for|from|to|by|with|until|since|after|before|during|"
    r"of)\s+)?" + _WH_WORD + ")",
    re.IGNORECASE,
)
_WH = re.compile(r"^(" + _WH_WORD + r")\s*(.*)$", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The sub-questions of a multi-part question ("When …, and where?" gives two), or the
    question alone. A bare part ("and where?", "Where and when …?") borrows the rest of the
    first part that has one."""
    parts = [p.strip(" ,?") for p in _PART_SPLIT.split(question.strip()) if p.strip(" ,?")]
    if len(parts) < 2 or not re.search(r"\b" + _WH_WORD, parts[0], re.IGNORECASE):
        return [question.strip()]
    rests = [m.group(2).strip() for p in parts if (m := _WH.match(p))]
    rest = next((r for r in rests if r), "")
    out = []
    for p in parts:
        m = _WH.match(p)
        if m and not m.group(2).strip() and rest:
            p = f"{m.group(1)} {rest}"
        out.append(p[:1].upper() + p[1:] + "?")
    return out
