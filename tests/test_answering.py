from __future__ import annotations

import pytest

from qa_service.answering import Answerer, Candidate, DecisionPolicy, decide, normalize_question
from qa_service.corpus import FaqEntry
from qa_service.engine import load_engine
from qa_service.errors import InvalidQuestionError
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder

POLICY = DecisionPolicy(
    answer_threshold=0.5,
    clarify_margin=0.05,
    answered_message="answered",
    clarify_message="clarify",
    fallback_message="fallback",
)


def cand(entry_id: str, score: float, duplicates: tuple[str, ...] = ()) -> Candidate:
    return Candidate(FaqEntry(id=entry_id, question=f"{entry_id}?", answer="x", duplicates=list(duplicates)), score)


def test_below_threshold_is_no_answer() -> None:
    decision = decide([cand("a", 0.49), cand("b", 0.3)], POLICY, 3)
    assert decision.status == "no_answer" and decision.answer is None and decision.alternatives == []
    assert decision.message == "fallback"
    assert decide([], POLICY, 3).status == "no_answer"


def test_clear_winner_is_answered_with_related_questions() -> None:
    decision = decide([cand("a", 0.9), cand("b", 0.7), cand("c", 0.6), cand("d", 0.4)], POLICY, 3)
    assert decision.status == "answered" and decision.answer is not None
    assert decision.answer.entry.id == "a"
    assert [c.entry.id for c in decision.alternatives] == ["b", "c"]  # d is below the threshold


def test_top_k_limits_related_questions() -> None:
    decision = decide([cand("a", 0.9), cand("b", 0.7), cand("c", 0.6)], POLICY, 1)
    assert [c.entry.id for c in decision.alternatives] == ["b"]


def test_two_close_distinct_answers_ask_to_clarify() -> None:
    decision = decide([cand("a", 0.80), cand("b", 0.78), cand("c", 0.77), cand("d", 0.6)], POLICY, 3)
    assert decision.status == "clarify" and decision.answer is None
    assert [c.entry.id for c in decision.alternatives] == ["a", "b", "c"]
    assert decision.message == "clarify"


def test_clarify_never_offers_fewer_than_two() -> None:
    decision = decide([cand("a", 0.80), cand("b", 0.79)], POLICY, 1)
    assert [c.entry.id for c in decision.alternatives] == ["a", "b"]


def test_same_question_entries_are_not_a_choice_of_meaning() -> None:
    decision = decide([cand("a", 0.80, ("a2",)), cand("a2", 0.79, ("a",)), cand("c", 0.5)], POLICY, 3)
    assert decision.status == "answered" and decision.answer is not None and decision.answer.entry.id == "a"
    assert [c.entry.id for c in decision.alternatives] == ["a2", "c"]


def test_close_second_below_threshold_does_not_clarify() -> None:
    decision = decide([cand("a", 0.52), cand("b", 0.49)], POLICY, 3)
    assert decision.status == "answered"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  how   long\tdo\nspasms last?  ", "how long do spasms last?"),
        ("how\u200b long\u200f do\u202e spasms\ufeff last", "how long do spasms last"),
        ("ｈｏｗ long", "how long"),  # full-width letters
        ("back\x00pain\x07", "back pain"),
    ],
)
def test_normalize_question(raw: str, clean: str) -> None:
    assert normalize_question(raw) == clean


def test_answerer_rejects_empty_and_overlong(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    engine = load_engine(built_settings, fake_embedder)
    with pytest.raises(InvalidQuestionError, match="question is empty"):
        engine.answerer.ask("\u200b \n ")
    with pytest.raises(InvalidQuestionError, match="1001 characters long; the limit is 1000"):
        engine.answerer.ask("x" * 1001)
    assert engine.answerer.ask("x" * 1000).status == "no_answer"


def test_answerer_end_to_end(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    answerer: Answerer = load_engine(built_settings, fake_embedder).answerer
    loads = fake_embedder.loads
    decision = answerer.ask("how long do back spasms last")
    assert decision.status == "answered" and decision.answer is not None
    assert decision.answer.entry.id == "spasm-duration"
    assert answerer.ask("what is the wonder back gadget").status == "no_answer"  # the advert is not served
    batch = answerer.ask_many(["how long do back spasms last", "banana bread recipe"])
    assert [d.status for d in batch] == ["answered", "no_answer"]
    assert fake_embedder.loads == loads  # the model loads with the engine, not per question
