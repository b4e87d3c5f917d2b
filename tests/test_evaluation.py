"""Metrics of an evaluation run, computed from rankings with the service's decision logic."""

from __future__ import annotations

from qa_service.answering.coverage import Coverage
from qa_service.tooling.evaluation import EvalRun, LabelledQuery, score_run
from tests.test_answering import POLICY, cand


def test_wrong_answers_are_replies_showing_no_relevant_entry() -> None:
    queries = [LabelledQuery(f"q{n}", frozenset({"right"})) for n in range(6)]
    rankings = [
        [cand("right", 0.9), cand("other", 0.4)],  # answered right
        [cand("other", 0.9), cand("right", 0.4)],  # answered wrong
        [cand("other", 0.80), cand("right", 0.79)],  # clarify, the right entry among the choices: not wrong
        [cand("other", 0.80), cand("else", 0.79)],  # clarify, no right choice: wrong
        [cand("right", 0.05)],  # declined: no reply to judge
        [cand("right", 0.9), cand("other", 0.4)],  # declined as not covered
    ]
    uncovered = Coverage((), 1.0, 2.0, 0.0, (), None, "unknown_topic")
    covered = Coverage((), 0.0, 0.0, 1.0, (), None, None)
    run = EvalRun(queries, rankings, None, 3, coverage=[covered] * 5 + [uncovered])
    metrics = score_run(run, POLICY, 3)
    assert metrics["p_at_1"] == round(3 / 6, 4)  # ranking only: the coverage check does not change it
    assert metrics["wrong_answer_rate"] == 0.5  # 2 of the 4 replies that showed entries
    assert metrics["answered_correct"] == round(1 / 6, 4)  # the top entry is relevant in one reply
    assert metrics["declined_answerable"] == round(2 / 6, 4)
    unjudged = score_run(EvalRun(queries, rankings, None, 3), POLICY, 3)  # no coverage: the last one is answered
    assert unjudged["declined_answerable"] == round(1 / 6, 4)


def test_escalated_questions_get_no_answer_from_the_faq_as_in_the_api() -> None:
    queries = [LabelledQuery("q0", frozenset({"right"})), LabelledQuery("q1", frozenset({"right"}))]
    rankings = [[cand("right", 0.9), cand("other", 0.4)], [cand("right", 0.9), cand("other", 0.4)]]
    noanswer = [[cand("other", 0.9)], [cand("other", 0.9)]]
    run = EvalRun(queries, rankings, noanswer, 2, urgent=[True, False], noanswer_urgent=[True, False])
    metrics = score_run(run, POLICY, 3)
    assert metrics["p_at_1"] == 1.0  # ranking is measured for every question
    assert metrics["answered_correct"] == 0.5 and metrics["declined_answerable"] == 0.5
    assert metrics["wrong_answer_rate"] == 0.0
    assert metrics["declined_noanswer"] == 0.5  # the escalated one; the other is answered
