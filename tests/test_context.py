"""Follow-up questions read with the conversation's earlier turns, and the clinic's synonyms file.

Fast tests, with the hashing embedder (words, not meaning) over the multi-topic clinic FAQ of the
conversation set; the figures with the real model are in tests/test_integration_model.py."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa_service.answering.answerer import Answerer
from qa_service.answering.context import Turn, leans_on_context, topic_of
from qa_service.answering.engine import load_engine
from qa_service.api.app import create_app
from qa_service.build.pipeline import build_index, index_is_current
from qa_service.cli import main
from qa_service.corpus.synonyms import Synonyms, lay_words, load_synonyms, parse_synonyms, vocabulary
from qa_service.errors import CorpusError
from qa_service.settings import Settings
from tests.conftest import DATA, make_settings
from tests.fakes import HashingEmbedder

CLINIC = DATA / "conversations" / "clinic_faq.yaml"


@pytest.fixture
def clinic_settings(tmp_path: Path, fake_embedder: HashingEmbedder) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CLINIC, corpus / "clinic.yaml")
    (corpus / "synonyms.txt").write_text("chickenpox: chicken pox, varicella\nmigraine: sick headache\n")
    settings = make_settings(tmp_path)
    build_index(settings, fake_embedder)
    return settings


@pytest.fixture
def answerer(clinic_settings: Settings, fake_embedder: HashingEmbedder) -> Answerer:
    return load_engine(clinic_settings, fake_embedder).answerer


def answered(decision: object) -> str | None:
    answer = getattr(decision, "answer", None)
    return answer.entry.id if answer is not None and getattr(decision, "status", None) == "answered" else None


# --- follow-ups ------------------------------------------------------------------------------------------


def test_a_follow_up_is_read_with_the_topic_of_the_turn_before(answerer: Answerer) -> None:
    turns = [Turn("what is shingles?", "what-is-shingles")]
    decision = answerer.ask("how long does it last?", context=turns)
    assert answered(decision) == "how-long-does-shingles-last"
    assert decision.context == "What is shingles?"  # the FAQ's question, shown as "answering about"
    assert answered(answerer.ask("how long does it last?")) != "how-long-does-shingles-last"  # alone: no topic


def test_the_most_recent_topic_wins_and_a_turn_without_an_answer_lends_its_words(answerer: Answerer) -> None:
    turns = [Turn("what is shingles?", "what-is-shingles"), Turn("what is the flu?", "what-is-the-flu")]
    assert answered(answerer.ask("how long does it last?", context=turns)) == "how-long-does-the-flu-last"
    unanswered = [Turn("i think i have norovirus", None)]
    decision = answerer.ask("how long does it last?", context=unanswered)
    assert answered(decision) == "how-long-does-norovirus-last" and decision.context == "i think i have norovirus"


def test_a_question_that_names_its_own_topic_is_not_changed_by_the_context(answerer: Answerer) -> None:
    turns = [Turn("how long does the flu last?", "how-long-does-the-flu-last")]
    alone = answerer.ask("What are the symptoms of strep throat?")
    together = answerer.ask("What are the symptoms of strep throat?", context=turns)
    assert answered(together) == answered(alone) == "what-are-the-symptoms-of-strep-throat"
    assert together.context is None


def test_a_message_that_names_its_own_topic_keeps_it_though_it_says_it(answerer: Answerer) -> None:
    turns = [Turn("how is strep throat treated?", "how-is-strep-throat-treated")]
    message = "when should i see a doctor for covid-19, i have had it for days"
    assert answered(answerer.ask(message)) == "when-should-i-see-a-doctor-for-covid-19"
    assert answered(answerer.ask(message, context=turns)) == "when-should-i-see-a-doctor-for-covid-19"


def test_a_question_on_something_the_faq_does_not_cover_is_not_answered_from_the_context(
    answerer: Answerer,
) -> None:
    turns = [Turn("what is shingles?", "what-is-shingles")]
    for message in [
        "how do I lower my cholesterol",
        "how is psoriasis treated",
        "can you recommend a dermatologist for moles",
    ]:
        alone = answerer.ask(message)
        assert alone.status != "answered" and alone.coverage is not None
        assert alone.coverage.reason == "unknown_topic", message
        assert answerer.ask(message, context=turns).status != "answered", message


def test_what_leans_on_context() -> None:
    for message in ["how long does it last?", "and for kids?", "what about adults", "is that contagious"]:
        assert leans_on_context(message), message
    for message in ["What are the symptoms of strep throat?", "should I get a flu shot this year?"]:
        assert not leans_on_context(message), message
    assert topic_of([Turn("hello", None), Turn("what is norovirus?", "x")], {"x": "What is norovirus?"}.get) is not None
    assert topic_of([], {}.get) is None


# --- emergencies over several messages -------------------------------------------------------------------


def test_an_emergency_told_over_two_messages_is_escalated(answerer: Answerer) -> None:
    turns = [Turn("my groin feels odd since my back went", None)]
    assert answerer.ask("and now it has gone numb").status != "urgent"  # alone, neither is an emergency
    decision = answerer.ask("and now it has gone numb", context=turns)
    assert decision.status == "urgent" and decision.red_flag is not None
    going_on = [Turn("I have chest pain", None)]  # urgent itself; the patient goes on describing it
    assert answerer.ask("it spreads to my left arm and I'm sweating", context=going_on).status == "urgent"


def test_an_earlier_emergency_is_not_escalated_again_on_a_later_question(answerer: Answerer) -> None:
    turns = [Turn("I have chest pain", None)]
    decision = answerer.ask("how long does the flu last?", context=turns)
    assert decision.status == "answered"


def test_an_earlier_emergency_is_escalated_again_on_a_message_that_does_not_name_its_answer(answerer: Answerer) -> None:
    turns = [
        Turn("what are the covid symptoms", "what-are-the-symptoms-of-covid-19"),
        Turn("his lips have gone blue", None),
    ]
    question = "when should i see a gp for covid"
    assert answered(answerer.ask(question)) == "when-should-i-see-a-doctor-for-covid-19"  # alone: an FAQ answer
    assert answerer.ask(question, context=turns).status == "urgent"  # it does not say all of "COVID-19"


def test_an_earlier_emergency_is_escalated_again_on_a_message_the_faq_does_not_answer(answerer: Answerer) -> None:
    turns = [Turn("i took a whole packet of my mums sleeping pills", None)]
    assert answerer.ask("like 25 maybe, im just sleepy now").status != "urgent"  # alone: no emergency
    decision = answerer.ask("like 25 maybe, im just sleepy now", context=turns)
    assert decision.status == "urgent" and decision.red_flag is not None and decision.red_flag.rule == "overdose"


# --- the API ---------------------------------------------------------------------------------------------


@pytest.fixture
def clinic_client(clinic_settings: Settings, fake_embedder: HashingEmbedder) -> TestClient:
    with TestClient(create_app(clinic_settings, embedder=fake_embedder)) as client:
        yield client  # type: ignore[misc]


def test_the_api_takes_the_context_and_says_when_it_used_it(clinic_client: TestClient) -> None:
    context = [{"question": "what is strep throat?", "answer_id": "what-is-strep-throat"}]
    body = clinic_client.post("/v1/ask", json={"question": "how long is it contagious?", "context": context}).json()
    assert body["status"] == "answered" and body["answer"]["id"] == "how-long-is-strep-throat-contagious"
    assert body["context"] == "What is strep throat?"
    again = clinic_client.post("/v1/ask", json={"question": "how long is it contagious?"}).json()
    assert again["context"] is None  # the cache keeps questions asked with and without context apart
    unknown = [{"question": "what is strep throat?", "answer_id": "an-entry-of-an-older-build"}]
    body = clinic_client.post("/v1/ask", json={"question": "how long is it contagious?", "context": unknown}).json()
    assert body["answer"]["id"] == "how-long-is-strep-throat-contagious"  # the patient's words stand in


def test_the_context_is_limited_and_checked(clinic_client: TestClient, clinic_settings: Settings) -> None:
    turn = {"question": "what is the flu?", "answer_id": "what-is-the-flu"}
    too_many = clinic_client.post("/v1/ask", json={"question": "and kids?", "context": [turn] * 4})
    assert too_many.status_code == 422
    long = {"question": "x" * (clinic_settings.max_question_chars + 1)}
    response = clinic_client.post("/v1/ask", json={"question": "and kids?", "context": [long]})
    assert response.status_code == 422 and "context question is" in response.json()["error"]["message"]
    extra = clinic_client.post("/v1/ask", json={"question": "and kids?", "context": [{**turn, "answer": "..."}]})
    assert extra.status_code == 422


def test_nothing_of_the_context_is_stored_or_logged(
    tmp_path: Path, fake_embedder: HashingEmbedder, clinic_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = clinic_settings.model_copy(update={"record_unanswered": True, "log_questions": True})
    secret = "my neighbour Jane Doe at 12 Elm Street has the flu"
    with TestClient(create_app(settings, embedder=fake_embedder)) as client, caplog.at_level(logging.INFO):
        client.post("/v1/ask", json={"question": "zzz qqq?", "context": [{"question": secret, "answer_id": None}]})
        client.app.state.service.recorder.flush()  # type: ignore[attr-defined]
        stored = [row.question for row in client.app.state.service.store.unanswered()]  # type: ignore[attr-defined]
    assert stored == ["zzz qqq?"]
    assert "Jane" not in caplog.text and "Elm" not in caplog.text


# --- synonyms --------------------------------------------------------------------------------------------


def test_a_patient_word_finds_the_entry_in_the_faq_s_words(answerer: Answerer) -> None:
    assert answered(answerer.ask("is chicken pox contagious?")) == "how-long-is-chickenpox-contagious"
    assert answered(answerer.ask("how is varicella treated?")) == answered(answerer.ask("how is chickenpox treated?"))


def test_synonyms_read_plurals_and_leave_other_words_alone() -> None:
    synonyms = parse_synonyms("muscle cramp: charley horse, charlie horse\n", path=Path("synonyms.txt"))
    assert synonyms.canonical("Two Charley Horses last night") == "Two muscle cramps last night"
    assert synonyms.canonical("a horse kicked me") == "a horse kicked me"
    assert Synonyms().canonical("charley horse") == "charley horse"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("muscle cramp charley horse\n", r"synonyms\.txt:1: expected 'faq term: patient word"),
        ("# vocabulary\nmuscle cramp:\n", r"synonyms\.txt:2: 'muscle cramp' has no patient words"),
        ("a: b, , c\n", r"synonyms\.txt:1: an empty term"),
        ("muscle cramp: charley horse\nspasm: charley horse\n", r"synonyms\.txt:2: 'charley horse' is listed twice"),
        ("cramp: <b>\n", r"synonyms\.txt:1: '<b>' is not a term"),
    ],
)
def test_a_bad_synonyms_file_names_the_file_and_line(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "synonyms.txt").write_text(text)
    with pytest.raises(CorpusError, match=error):
        load_synonyms(tmp_path)


def test_the_build_records_the_synonyms_and_a_change_makes_it_stale(
    clinic_settings: Settings, fake_embedder: HashingEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = load_engine(clinic_settings, fake_embedder).index.manifest
    clinic = {"chickenpox": ["chicken pox", "varicella"], "migraine": ["sick headache"]}
    assert list(manifest.synonyms.items())[:2] == list(clinic.items())  # the clinic's first, as written
    assert manifest.synonyms["head lice"] == ["nits"]  # then the lay words that fit the corpus
    assert index_is_current(clinic_settings, fake_embedder) is None
    (clinic_settings.corpus_dir / "synonyms.txt").write_text("chickenpox: chicken pox\n")
    assert "synonyms (synonyms.txt, or the built-in lay words) changed" in (
        index_is_current(clinic_settings, fake_embedder) or ""
    )
    without_lay = clinic_settings.model_copy(update={"lay_words": False})
    (clinic_settings.corpus_dir / "synonyms.txt").write_text(
        "chickenpox: chicken pox, varicella\nmigraine: sick headache\n"
    )
    assert index_is_current(clinic_settings, fake_embedder) is None
    assert "changed since the index was built" in (index_is_current(without_lay, fake_embedder) or "")
    (clinic_settings.corpus_dir / "synonyms.txt").write_text("chickenpox: chicken pox\n")
    assert main(["validate", "--corpus-dir", str(clinic_settings.corpus_dir)]) == 0
    assert "synonyms.txt: 1 terms with 1 patient words are valid" in capsys.readouterr().out
    (clinic_settings.corpus_dir / "synonyms.txt").write_text("chickenpox chicken pox\n")
    assert main(["validate", "--corpus-dir", str(clinic_settings.corpus_dir)]) == 1
    assert "synonyms.txt:1:" in capsys.readouterr().err


def test_lay_words_apply_where_the_corpus_uses_the_term_and_the_clinic_did_not_say_otherwise() -> None:
    texts = ["Is there a vaccine for the flu?", "Yes, ask your doctor about the flu shot."]
    read = vocabulary(Synonyms(), texts)
    assert (
        read.canonical("is there a jab for it, or should i ask my gp")
        == "is there a vaccine for it, or should i ask my doctor"
    )
    assert read.canonical("my kids have nits") == "my kids have nits"  # the corpus says neither children nor head lice
    shots = vocabulary(Synonyms(), ["Should I get a flu shot?"])  # the first of the choices the corpus uses
    assert shots.canonical("the flu jab") == "the flu shot"
    own = Synonyms({"booster": ("jab",)})  # the clinic's word wins
    assert vocabulary(own, texts).canonical("a jab") == "a booster"
    assert vocabulary(Synonyms(), texts, lay=False).canonical("a jab") == "a jab"
    assert lay_words().terms  # the bundled list is valid


def test_the_bundled_synonyms_file_is_valid() -> None:
    from tests.conftest import ROOT

    synonyms = load_synonyms(ROOT / "corpus")
    assert synonyms.terms["muscle cramp"] == ("charley horse", "charlie horse")
    assert synonyms.canonical("what exactly is a pulled muscle") == "what exactly is a muscle strain"
