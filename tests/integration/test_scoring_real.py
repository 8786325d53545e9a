"""The packaged model's answer check gives one score per (sentence, question, section), whatever
the model read before it: the gate's threshold was fitted on scores read that way."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.llm import get_llm, llm_lock
from rag.settings import Settings
from rag.verification.prompts import answer_messages
from rag.verification.scoring import LlamaCppYesNoScorer

pytestmark = [pytest.mark.integration, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = (
    "The signing of the Joint Communiqué in New York marked the formal establishment of relations."
)
SECTION = "Bhutan–Qatar relations › History"
ASKED = "Where was the Joint Communiqué signed?"
# Shares its sentence, section and first words with the question asked.
RELATED = "Where was the Joint Communiqué drafted?"


def test_a_check_scores_the_same_whatever_the_model_read_before() -> None:
    settings = Settings(models_dir=ROOT / "data" / "models")
    llm, lock = get_llm(settings), llm_lock(settings)
    client = llm.client
    check = answer_messages(SENTENCE, ASKED, SECTION)

    client.reset()  # nothing read
    first = LlamaCppYesNoScorer(client, lock, cache_size=0).p_yes(check)

    scorer = LlamaCppYesNoScorer(client, lock, cache_size=0)
    scorer.p_yes(answer_messages(SENTENCE, RELATED, SECTION))
    after_related = scorer.p_yes(check)  # all but the question's last words already read
    with lock:
        llm.bind(max_tokens=2).invoke("Name a country in Asia.")  # an answer used the model
    after_answer = scorer.p_yes(check)
    scorer.release()

    assert 0.0 < first < 1.0
    assert after_related == first
    assert after_answer == first
