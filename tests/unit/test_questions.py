"""Splitting a multi-part question into the parts that are read and answered one by one."""

from __future__ import annotations

from rag.questions import question_parts


def test_multi_part_questions_are_split_into_their_parts() -> None:
    assert question_parts(
        "When did the two countries establish diplomatic relations, and where?"
    ) == [
        "When did the two countries establish diplomatic relations?",
        "Where did the two countries establish diplomatic relations?",
    ]
    assert question_parts("Who founded it and what does she say about rivers?") == [
        "Who founded it?",
        "What does she say about rivers?",
    ]
    assert question_parts("Who is Dr. Jane Roe?") == ["Who is Dr. Jane Roe?"]
    # A question word after a preposition opens a part too; a bare first part borrows.
    assert question_parts("In what year was it founded, and in which city is it?") == [
        "In what year was it founded?",
        "In which city is it?",
    ]
    assert question_parts("Where and when did the survey begin?") == [
        "Where did the survey begin?",
        "When did the survey begin?",
    ]
    # Clauses of one question are not parts: a comma alone, or "and" without a question word.
    for one in (
        "When the plant closed, which policy ended?",
        "What rocks, which are older than the crust, occur here?",
        "Which countries did Bhutan and Qatar sign with?",
    ):
        assert question_parts(one) == [one]
