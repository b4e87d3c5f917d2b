"""The coverage check: questions on topics the FAQ does not cover are declined, whatever they sound like."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from qa_service.answering.coverage import (
    INTENTS,
    CorpusCoverage,
    CoverageRules,
    english_words,
    question_words,
    uncovered_reference_questions,
)
from qa_service.build.pipeline import build_index, index_is_current, keyword_texts
from qa_service.corpus.entries import FaqEntry
from qa_service.index.keywords import KeywordIndex
from qa_service.index.store import read_manifest
from qa_service.settings import CoverageIntent, Settings
from tests.conftest import make_settings
from tests.fakes import HashingEmbedder

BACK_FAQ = [
    ("duration", "How long do back spasms last?", "Most back spasms last a few days."),
    ("diagnose", "How are muscle spasms diagnosed?", "A doctor examines the back and may order an X-ray."),
    ("heat", "Should I use heat or ice on a back spasm?", "Ice first, then heat to relax the muscle."),
    ("massage", "Is massage good for back spasms?", "Massage increases blood flow to the muscle."),
    ("causes", "What causes muscle spasms in the back?", "Overuse, dehydration and stress cause spasms."),
]
# calibration as a build records it: the uncovered reference questions reached 0.40 +- 0.10
CALIBRATION = {"uncovered_count": 200, "uncovered_mean": 0.40, "uncovered_std": 0.10}


@dataclass(frozen=True)
class Best:
    score: float


def corpus(
    rows: list[tuple[str, str, str]] = BACK_FAQ, calibration: dict[str, float] | None = None, **rules: object
) -> CorpusCoverage:
    entries = [FaqEntry(id=i, question=q, answer=a) for i, q, a in rows]
    keywords = KeywordIndex.build(keyword_texts(entries))
    return CorpusCoverage(keywords, calibration, CoverageRules(**rules), english_words())  # type: ignore[arg-type]


CLOSE = Best(0.9)  # a best match far above the uncovered level: only the word checks decide


def test_question_words_keep_what_carries_meaning() -> None:
    assert question_words("What's the best way? I've had 3 spasms, don't know why") == ["best", "way", "spasms", "know"]


@pytest.mark.parametrize(
    "question",
    [
        "how do I know if I have diabetes",
        "what are the symptoms of a migraine",
        "diabetis signs",  # misspelt, still a topic the FAQ never mentions
        "uti symptoms women",
    ],
)
def test_a_topic_the_faq_never_mentions_is_not_covered(question: str) -> None:
    coverage = corpus().assess(question, CLOSE)
    assert coverage.reason == "unknown_topic" and not coverage.covered
    assert coverage.unknown_share >= 0.33 and coverage.unknown_words()


@pytest.mark.parametrize(
    "question",
    [
        "how long will my back spasm last",
        "how long do back spazms last",  # a misspelt corpus word is that word
        "how is a muscle spasm diagnosed",
        "how are spasms diagnosed",  # an inflection of a corpus word
        "how often shoud i ice my back",  # a misspelt common word carries no topic
        "can asthma medicine cause back spasms",  # names the FAQ's own topic (spasm: most entries)
    ],
)
def test_questions_on_the_faqs_topics_are_covered(question: str) -> None:
    assert corpus().assess(question, CLOSE).covered


def test_a_rare_word_the_faq_uses_names_what_the_question_is_about() -> None:
    drugs = [*BACK_FAQ, ("glimepiride", "How should glimepiride be stored?", "At room temperature, dry.")]
    question = "glimepiride warehouse storage excursions allowable"  # most of its weight is unknown words
    assert corpus(drugs).assess(question, CLOSE).covered
    assert corpus().assess(question, CLOSE).reason == "unknown_topic"  # an FAQ that never names the drug


def test_weight_follows_rarity_in_general_english() -> None:
    words = {word.text: word for word in corpus().words("do I know if back spasms are fibromyalgia")}
    assert words["know"].weight == 0.0  # common: no topic, known to the FAQ or not
    assert words["spasms"].weight > 1.5 and words["spasms"].known and words["spasms"].topic == 1.0
    assert words["back"].weight == 0.0 and words["back"].known and words["back"].topic == 1.0
    assert words["fibromyalgia"].weight > 2.0 and not words["fibromyalgia"].known


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("how much does a massage cost", "cost"),
        ("is massage covered by my insurance", "insurance"),
        ("do I need a referral for a massage", "referral"),
        ("can I get an appointment for a massage", "booking"),
        ("is massage safe for back spasms when pregnant", "population"),
    ],
)
def test_a_request_no_entry_mentions_is_not_covered(question: str, intent: str) -> None:
    coverage = corpus().assess(question, CLOSE)
    assert coverage.reason == f"intent:{intent}" and coverage.intents == (intent,)


def test_a_request_some_entry_asks_about_is_covered() -> None:
    priced = [*BACK_FAQ, ("price", "How much does a massage cost at the clinic?", "A session costs $60.")]
    assert corpus(priced).assess("what is the price of a massage", CLOSE).covered
    assert not corpus(intents=("referral",)).assess("how much does a massage cost", CLOSE).intents


def test_a_match_no_closer_than_uncovered_topics_is_not_covered() -> None:
    check = corpus(calibration=CALIBRATION)
    assert check.assess("how long do back spasms last", Best(0.45)).reason == "below_uncovered_level"  # +0.5 sd
    assert check.assess("how long do back spasms last", Best(0.55)).covered  # +1.5 sd
    assert check.assess("how long do back spasms last", Best(0.55)).level == pytest.approx(1.5)
    stricter = corpus(calibration=CALIBRATION, level_margin=2.0)
    assert stricter.assess("how long do back spasms last", Best(0.55)).reason == "below_uncovered_level"


def test_without_a_measured_level_only_the_word_checks_apply() -> None:
    old_build = corpus(calibration={"offtopic_mean": 0.2})  # an index built before the level was measured
    coverage = old_build.assess("how long do back spasms last", Best(0.1))
    assert coverage.covered and coverage.level is None
    few = corpus(calibration={**CALIBRATION, "uncovered_count": 5})  # nearly every reference topic covered
    assert few.assess("how long do back spasms last", Best(0.1)).covered


def test_the_check_can_be_turned_off() -> None:
    coverage = corpus(calibration=CALIBRATION, enabled=False).assess("how do I know if I have diabetes", Best(0.1))
    assert coverage.covered and coverage.unknown_words() == ["diabetes"]  # still measured, for --explain


def test_reference_questions_skip_topics_the_corpus_covers() -> None:
    questions = uncovered_reference_questions(corpus())
    assert len(questions) >= 300 and questions == uncovered_reference_questions(corpus())  # the same every build
    assert any("diabetes" in question for question in questions)
    with_diabetes = [*BACK_FAQ, ("diabetes", "Can diabetes cause muscle spasms?", "Yes, through nerve damage.")]
    assert not any("diabetes" in question for question in uncovered_reference_questions(corpus(with_diabetes)))
    assert all("{}" not in question for question in questions)


def test_every_intent_is_a_setting_choice() -> None:
    assert set(get_args(CoverageIntent)) == set(INTENTS)
    assert Settings(_env_file=None).coverage_intents == list(INTENTS)  # type: ignore[call-arg]


def test_builds_measure_the_level_and_older_builds_are_stale(
    tmp_path: Path, tiny_corpus: Path, fake_embedder: HashingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    manifest = build_index(settings, fake_embedder)
    calibration = manifest.calibration or {}
    assert calibration["uncovered_count"] >= 100 and calibration["uncovered_std"] > 0
    assert index_is_current(settings, fake_embedder) is None
    folder = settings.index_dir / "builds" / manifest.build_id
    old = manifest.model_copy(update={"calibration": {k: v for k, v in calibration.items() if "uncovered" not in k}})
    (folder / "manifest.json").write_text(old.model_dump_json(), encoding="utf-8")
    assert read_manifest(folder).calibration is not None
    assert "coverage" in (index_is_current(settings, fake_embedder) or "")


def test_an_uncovered_question_gets_the_uncovered_message_over_http(
    built_settings: Settings, fake_embedder: HashingEmbedder, client: TestClient
) -> None:
    body = client.post("/v1/ask", json={"question": "how do I know if I have diabetes"}).json()
    assert body["status"] == "no_answer" and body["answer"] is None and body["alternatives"] == []
    assert body["message"] == built_settings.uncovered_message
    assert "diabetes" not in body["message"]  # the reply never echoes the question
    assert set(body) == {"status", "answer", "alternatives", "message", "red_flag", "note", "disclaimer", "context"}
