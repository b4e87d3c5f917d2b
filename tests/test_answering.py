from __future__ import annotations

import pytest

from qa_service.answering.answerer import Answerer, normalize_question, sentence_views
from qa_service.answering.calibration import ConfidenceModel
from qa_service.answering.coverage import Coverage
from qa_service.answering.decision import Candidate, DecisionPolicy, decide
from qa_service.answering.engine import load_engine
from qa_service.corpus.entries import FaqEntry
from qa_service.errors import InvalidQuestionError
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder

POLICY = DecisionPolicy(
    answer_threshold=0.5,
    clarify_margin=0.5,
    answered_message="answered",
    clarify_message="clarify",
    fallback_message="fallback",
)
# Candidates below have both similarities equal to their score and no keyword match, so
# logit = -4 + score / 0.1 + min((score - rival) / 0.1, 3): easy numbers for the tests.
MODEL = ConfidenceModel(
    {
        "offtopic_mean": 0.0,
        "offtopic_std": 0.1,
        "question_mean": 0.0,
        "question_std": 0.1,
        "qa_mean": 0.0,
        "qa_std": 0.1,
    },
    coefficients=(-4.0, 0.5, 0.5, 0.0, 1.0, 0.0),
)


def cand(
    entry_id: str, score: float, duplicates: tuple[str, ...] = (), answer: str = "", keyword: float = 0.0
) -> Candidate:
    entry = FaqEntry(
        id=entry_id, question=f"{entry_id}?", answer=answer or f"answer {entry_id}", duplicates=list(duplicates)
    )
    return Candidate(entry, score, dense_question=score, dense_qa=score, keyword=keyword)


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.entry.id for c in candidates]


def test_off_topic_is_no_answer() -> None:
    decision = decide([cand("a", 0.05), cand("b", 0.03)], POLICY, MODEL, 3)
    assert decision.status == "no_answer" and decision.answer is None and decision.alternatives == []
    assert decision.message == "fallback"
    assert decide([], POLICY, MODEL, 3).status == "no_answer"


def test_clear_winner_is_answered_with_its_confidence_and_related_questions() -> None:
    decision = decide([cand("a", 0.9), cand("b", 0.5), cand("c", 0.45), cand("d", 0.3)], POLICY, MODEL, 3)
    assert decision.status == "answered" and decision.answer is not None
    assert decision.answer.entry.id == "a"
    assert decision.answer.confidence == pytest.approx(MODEL.confidence(cand("a", 0.9), 0.5), abs=1e-4)
    assert decision.answer.confidence > 0.99
    assert ids(decision.alternatives) == ["b", "c"]  # d is not close enough to be offered
    assert all(c.confidence is not None and c.confidence < decision.answer.confidence for c in decision.alternatives)


def test_top_k_limits_related_questions() -> None:
    decision = decide([cand("a", 0.9), cand("b", 0.5), cand("c", 0.4)], POLICY, MODEL, 1)
    assert ids(decision.alternatives) == ["b"]


def test_close_different_answers_ask_to_clarify() -> None:
    decision = decide([cand("a", 0.80), cand("b", 0.78), cand("c", 0.77), cand("d", 0.6)], POLICY, MODEL, 3)
    assert decision.status == "clarify" and decision.answer is None
    assert ids(decision.alternatives) == ["a", "b", "c"]  # d is 2 standard deviations behind
    assert decision.message == "clarify"
    assert decide([cand("a", 0.80), cand("b", 0.79)], POLICY, MODEL, 1).alternatives[1].entry.id == "b"


def test_a_different_answer_holding_clearly_more_of_the_words_is_offered_beside_the_best() -> None:
    # b is 1.5 standard deviations behind a (not "close"), but holds 50% more of the question's words
    decision = decide([cand("a", 0.90, keyword=0.3), cand("b", 0.75, keyword=0.8)], POLICY, MODEL, 3)
    assert decision.status == "clarify" and ids(decision.alternatives) == ["a", "b"]
    slightly = decide([cand("a", 0.90, keyword=0.3), cand("b", 0.75, keyword=0.5)], POLICY, MODEL, 3)
    assert slightly.status == "answered"  # 20% more is no disagreement
    far = decide([cand("a", 0.90, keyword=0.3), cand("b", 0.65, keyword=1.0)], POLICY, MODEL, 3)
    assert far.status == "answered"  # 2.5 standard deviations behind: the vectors clearly prefer a
    same = decide([cand("a", 0.90, ("b",), keyword=0.3), cand("b", 0.75, keyword=0.8)], POLICY, MODEL, 3)
    assert same.status == "answered"  # the same question asked twice is no choice to offer


def test_an_uncovered_question_is_declined_however_close_it_sounds() -> None:
    uncovered = Coverage((), 1.0, 2.0, 0.0, (), 3.0, "unknown_topic")
    decision = decide([cand("a", 0.9), cand("b", 0.5)], POLICY, MODEL, 3, uncovered)
    assert decision.status == "no_answer" and decision.answer is None and decision.alternatives == []
    assert decision.message == POLICY.uncovered_message and decision.coverage is uncovered
    covered = Coverage((), 0.0, 0.0, 0.5, (), 3.0, None)
    assert decide([cand("a", 0.9), cand("b", 0.5)], POLICY, MODEL, 3, covered).status == "answered"


def test_weak_and_ambiguous_is_not_a_clarify() -> None:
    decision = decide([cand("a", 0.05), cand("b", 0.049)], POLICY, MODEL, 3)
    assert decision.status == "no_answer"


def test_same_question_or_same_answer_is_not_a_choice_of_meaning() -> None:
    decision = decide([cand("a", 0.80, ("a2",)), cand("a2", 0.79, ("a",)), cand("c", 0.45)], POLICY, MODEL, 3)
    assert decision.status == "answered" and decision.answer is not None and decision.answer.entry.id == "a"
    assert ids(decision.alternatives) == ["a2", "c"]
    same_answer = decide([cand("x", 0.8, answer="Walk."), cand("y", 0.79, answer="walk.")], POLICY, MODEL, 3)
    assert same_answer.status == "answered"


def test_a_near_tie_lowers_confidence() -> None:
    alone = decide([cand("a", 0.35), cand("b", 0.05)], POLICY, MODEL, 3)
    assert alone.status == "answered"
    contested = decide([cand("a", 0.35), cand("c", 0.3), cand("b", 0.05)], POLICY, MODEL, 3)
    assert contested.answer is None or contested.answer.confidence < alone.answer.confidence  # type: ignore[union-attr]


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
    advert = answerer.ask("what is the wonder back gadget")  # the advert is not served
    assert "gadget" not in ids([*([advert.answer] if advert.answer else []), *advert.alternatives])
    batch = answerer.ask_many(["how long do back spasms last", "banana bread recipe"])
    assert [d.status for d in batch] == ["answered", "no_answer"]
    assert fake_embedder.loads == loads  # the model loads with the engine, not per question


def test_other_languages_get_an_honest_no_answer(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    answerer = load_engine(built_settings, fake_embedder).answerer
    spanish, english = answerer.ask_many(["¿Cuánto dura un espasmo de espalda?", "how long do back spasms last"])
    assert spanish.status == "no_answer" and spanish.message.startswith("Sorry, I can only answer questions in English")
    assert english.status == "answered"


def test_entries_without_answers_are_not_the_same_answer() -> None:
    first = Candidate(FaqEntry(id="q1", question="What is X?", answer=""), 0.8, 0.8, 0.8)
    second = Candidate(FaqEntry(id="q2", question="What causes Y?", answer=""), 0.79, 0.79, 0.79)
    decision = decide([first, second], POLICY, MODEL, 3)
    assert decision.status == "clarify"


def test_sentence_views() -> None:
    message = "Back spasm question\nI lifted a box at work. How long do back spasms last? Thanks!"
    assert sentence_views(message) == [
        "Back spasm question",
        "I lifted a box at work.",
        "How long do back spasms last?",
    ]  # "Thanks!" is too short to be a question of its own
    assert sentence_views("How long do back spasms last?") == []


def test_one_matching_sentence_of_a_long_message_counts(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    message = (
        "My week has been terrible, work is busy, the kids are loud and the dog barks at night. "
        "How long do back spasms last?"
    )
    scores = {}
    for weight in (0.0, 0.3):
        settings = built_settings.model_copy(update={"sentence_weight": weight})
        [ranked] = load_engine(settings, fake_embedder).answerer.candidates([message])
        assert ranked[0].entry.id == "spasm-duration"
        scores[weight] = ranked[0].score
    assert scores[0.3] > scores[0.0]
