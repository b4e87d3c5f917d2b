"""End to end with the real model (all-MiniLM-L6-v2 from its PyPI package): import, build, ask, API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa_service.answering.engine import load_engine, policy_from_settings
from qa_service.api.app import create_app
from qa_service.cli import main
from qa_service.model.embedder import SentenceTransformerEmbedder
from qa_service.settings import DEFAULT_MODEL, Settings
from qa_service.tooling.bench import BenchPlan, render
from qa_service.tooling.evaluation import evaluate_engine, load_queries, score_run
from tests.conftest import DATA, ROOT, SEED_PAGE

pytestmark = pytest.mark.model

OFF_TOPIC = ["do you have parking at the clinic", "What are your opening hours?", "recipe for banana bread"]


def test_default_model_comes_from_the_pypi_package(real_embedder: SentenceTransformerEmbedder) -> None:
    vectors = real_embedder.encode(["back spasm", "muscle cramp in the back", "banana bread"])
    assert vectors.shape == (3, 384)
    norms = (vectors**2).sum(axis=1)
    assert norms == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2


def test_bfloat16_arithmetic_gives_the_float32_vectors_to_four_decimals_and_saves_float32_weights(
    tmp_path: Path,
) -> None:
    texts = ["how long will my back spasm last", "Can I take ibuprofen with heat packs?", "parking", "x " * 300]
    exact = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="float32")
    fast = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="bfloat16")
    assert fast.precision == "bfloat16"
    reference, vectors = exact.encode(texts), fast.encode(texts)
    assert (reference * vectors).sum(axis=1) == pytest.approx([1.0] * len(texts), abs=1e-4)
    assert fast.encode(texts[:1]) == pytest.approx(vectors[:1], abs=1e-3)  # alone or in a batch: same question
    fast.save(tmp_path / "model")  # what a build stores: the float32 weights, not the bfloat16 copies
    reloaded = SentenceTransformerEmbedder(DEFAULT_MODEL, path=tmp_path / "model", precision="float32")
    assert (reloaded.encode(texts) == reference).all()


def test_acceptance_questions_on_the_bundled_corpus(
    seed_settings: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    answerer = load_engine(seed_settings, real_embedder).answerer
    decision = answerer.ask("how long will my back spasm last")
    assert decision.status == "answered" and decision.answer is not None
    assert decision.answer.entry.id == "how-long-do-back-muscle-spasms-take-to-heal"
    assert decision.answer.entry.source.title == "Treatment FAQ"
    for question in OFF_TOPIC:
        assert answerer.ask(question).status == "no_answer", question
    advert = answerer.ask("What is spinal backrack?")  # the advert is not served
    shown = [c.entry.id for c in [*([advert.answer] if advert.answer else []), *advert.alternatives]]
    assert "what-is-spinal-backrack" not in shown


def test_cli_import_build_ask_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_FINETUNE_MAX_STEPS", "8")  # the flow is under test here, not the training
    assert main(["import", str(SEED_PAGE)]) == 0
    assert main(["build"]) == 0
    capsys.readouterr()
    assert main(["ask", "how long will my back spasm last", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "answered"
    assert body["answer"]["id"] == "how-long-do-back-muscle-spasms-take-to-heal"
    assert body["answer"]["source"]["author"] == "Israel Carter"
    assert main(["ask", "do you have parking at the clinic", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "no_answer" and body["answer"] is None


def test_a_different_model_setting_refuses_the_index(seed_settings: Settings) -> None:
    settings = seed_settings.model_copy(update={"model": str(ROOT / "no-such-model")})
    with TestClient(create_app(settings)) as client:
        body = client.get("/readyz").json()
    assert body["error"]["code"] == "not_ready"
    assert "built with model 'sentence-transformers/all-MiniLM-L6-v2'" in body["error"]["message"]


def test_api_with_the_real_model(seed_settings: Settings, real_embedder: SentenceTransformerEmbedder) -> None:
    with TestClient(create_app(seed_settings, embedder=real_embedder)) as client:
        ready = client.get("/readyz").json()
        assert ready["index"]["model"] == DEFAULT_MODEL and ready["index"]["entry_count"] == 78
        body = client.post("/v1/ask", json={"question": "Is it better to use ice or heat on a spasm?"}).json()
        assert body["status"] in {"answered", "clarify"}
        top = body["answer"]["id"] if body["answer"] else body["alternatives"][0]["id"]
        assert top == "is-heat-or-cold-better-for-muscle-spasms"
        entry = client.get(f"/v1/faq/{top}").json()
        assert entry["answer"].startswith("Typically, with acute injuries")
        assert client.post("/v1/ask", json={"question": "recipe for banana bread"}).json()["status"] == "no_answer"


def test_seed_phrasings_and_off_topic_questions(
    seed_settings: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    """The answer-quality targets on the repo's own test set for the bundled corpus (the same
    decisions `qa-service eval --faq corpus` makes, on the session's build of it)."""
    run = evaluate_engine(
        load_engine(seed_settings, real_embedder),
        load_queries(DATA / "seed_queries.jsonl"),
        load_queries(DATA / "offtopic_queries.jsonl"),
    )
    metrics = score_run(run, policy_from_settings(seed_settings))
    assert metrics["p_at_1"] >= 0.95
    assert metrics["answered_correct"] >= 0.95
    assert metrics["wrong_answer_rate"] <= 0.02  # a confident wrong answer costs more than a decline
    assert metrics["declined_noanswer"] >= 0.95


# The examples of the coverage issue: each sounds like an entry of the bundled FAQ ("How do you know if
# you have a muscle spasm?") but asks about something it does not cover.
UNCOVERED_EXAMPLES = [
    "how do I know if I have diabetes",
    "what are the symptoms of covid",
    "what are the signs of a migraine",
    "how much does an MRI cost at your clinic",
    "do I need a referral to see a specialist",
    "what are the symptoms of a urinary tract infection",
]


@pytest.mark.parametrize("half", ["tune", "report"])
def test_health_questions_the_faq_does_not_cover_are_declined(
    seed_settings: Settings, real_embedder: SentenceTransformerEmbedder, half: str
) -> None:
    """tests/data/uncovered_health.*.jsonl: 421 questions on other conditions, tests, services and
    medicines, in the shapes patients use, 99 of them sharing words with the FAQ; split by query hash
    into a half the coverage check was tuned on and a half it was not."""
    answerer = load_engine(seed_settings, real_embedder).answerer
    lines = (DATA / f"uncovered_health.{half}.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["query"] for line in lines]
    decisions = answerer.ask_many(questions)
    answered = [q for q, d in zip(questions, decisions, strict=True) if d.status in ("answered", "clarify")]
    assert 1 - len(answered) / len(questions) >= 0.95, answered  # no_answer, or urgent from a red-flag rule
    for decision in answerer.ask_many(UNCOVERED_EXAMPLES):
        assert decision.status == "no_answer" and decision.message == seed_settings.uncovered_message


def test_bench_quick_run_measures_every_section(seed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """The harness works end to end (how fast is for docs/benchmarks.md, not for tests)."""
    args = ["--index-dir", str(seed_settings.index_dir), "--model", seed_settings.model]
    questions = str(DATA / "seed_queries.jsonl")
    build_faq = str(DATA / "tiny_corpus.yaml")
    command = ["bench", "--quick", "--questions", questions, "--build-faq", build_faq, "--load", "200"]
    assert main([*command, "--concurrency", "8", "--json", *args]) == 0
    results = json.loads(capsys.readouterr().out)
    http = results["http"]
    plan = BenchPlan.quick()
    for level in plan.levels:  # the same distinct questions at every level, each once
        run = http["distinct"][str(level)]
        assert run["requests"] == plan.distinct and run["failures"] == 0 and run["requests_per_second"] > 0
    assert results["in_process_ms"]["count"] == plan.distinct == results["questions"]
    beside = results["floor_paired_ms"]  # the floor and HTTP c=1 asked each question in turn
    assert beside["in_process"]["count"] == beside["http_c1"]["count"] == plan.distinct
    assert results["http_c1_over_floor_paired"] > 0 and "in-process floor, paired" in render(results)
    for run in http["repeated"].values():
        assert run["failures"] == 0 and run["server_ms"]["count"] == plan.repeated
    assert http["cold_start_s"] > 0 and http["rss_end_mb"] > 0
    build = results["build"]
    assert build["entries"] == build["rate_entries"] == 7 and build["raw_encode_s"] > 0
    assert build["initial_build_s"] > 0 and build["rebuild_after_one_edit_s"] > 0  # the first run builds once
    scale = results["scale"]
    assert scale["random"]["rows"] > 0 and 0 < scale["random"]["recall_at_10"] <= 1
    assert scale["random"]["search"]["p99_ms"] > 0
    load = results["load"]
    assert load["requests"] == 200 and load["failures"] == 0 and load["rss_end_mb"] > 0
    assert "target" in render(results)  # the table prints every measured figure against its target
    assert results["encoder_precision"] == "float32" and "encoder float32" in render(results)  # the default


# --- the clinic's vocabulary and conversations -------------------------------------------------------------

# One patient's question per word of the bundled corpus/synonyms.txt
PATIENT_WORDS = {
    "charley horse": "what should I do about a charley horse",
    "charlie horse": "i keep getting charlie horses at night",
    "pulled muscle": "what exactly is a pulled muscle",
    "strained muscle": "what is a strained muscle",
    "slipped disc": "can a slipped disc cause back spasms",
    "slipped disk": "is a slipped disk causing my back spasm",
    "bulging disc": "is a bulging disc serious",
    "ruptured disc": "can a ruptured disc cause muscle spasms",
    "physiotherapy": "what does physiotherapy do for back spasms",
    "physio": "is physio good for back spasms",
    "muscle relaxer": "how long can i take a muscle relaxer",
    "sciatica": "what causes sciatica",
    "advil": "can i take advil for a back spasm",
    "motrin": "is motrin good for muscle spasms",
    "nurofen": "does nurofen help back spasms",
    "tylenol": "is tylenol ok for back spasms",
    "paracetamol": "can paracetamol help a back spasm",
    "panadol": "will panadol ease my back spasm",
}


def test_each_patient_word_of_the_synonyms_finds_an_entry_in_the_faq_s_words(
    seed_settings: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    from qa_service.corpus.synonyms import load_synonyms

    answerer = load_engine(seed_settings, real_embedder).answerer
    synonyms = load_synonyms(seed_settings.corpus_dir)
    assert {word for words in synonyms.terms.values() for word in words} == set(PATIENT_WORDS)
    for term, words in synonyms.terms.items():
        for word in words:
            decision = answerer.ask(PATIENT_WORDS[word])
            assert decision.status == "answered" and decision.answer is not None, word
            entry = decision.answer.entry
            assert term in " ".join([entry.question, *entry.alternates, entry.answer]).lower(), (word, entry.id)


SETS = ("conversations.jsonl", "fresh.jsonl", "fresh2.jsonl", "fresh3.jsonl", "fresh4.jsonl")


@pytest.fixture(scope="module")
def clinic_answerer(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> object:
    from qa_service.build.pipeline import build_index

    base = tmp_path_factory.mktemp("clinic")
    (base / "corpus").mkdir()
    (base / "corpus" / "clinic.yaml").write_bytes((DATA / "conversations" / "clinic_faq.yaml").read_bytes())
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, corpus_dir=base / "corpus", index_dir=base / "index", model=DEFAULT_MODEL
    )
    build_index(settings, real_embedder)
    return load_engine(settings, real_embedder).answerer


def test_conversations_follow_ups_standalone_questions_and_emergencies(
    clinic_answerer: object, seed_settings: Settings, real_embedder: SentenceTransformerEmbedder
) -> None:
    """Floors under the figures measured on the five conversation sets (docs/benchmarks.md,
    Conversations): follow-ups answered right in context 0.71 (target 0.85, not met) against 0.24
    alone; standalone questions not changed overall; emergencies over several messages all
    escalated; alarming but benign words never escalated; questions the FAQ does not cover answered
    after a turn it answered 24 of 479 times (17 alone)."""
    from qa_service.tooling.conversations import (
        UNCOVERED_FILES,
        load_conversations,
        off_topic,
        report,
        run,
        uncovered_questions,
    )

    folder = DATA / "conversations"
    chats = [c for name in SETS for c in load_conversations(folder / name)]
    bundled = load_engine(seed_settings, real_embedder).answerer
    outcomes = run(clinic_answerer, [c for c in chats if c.corpus == "clinic"])  # type: ignore[arg-type]
    outcomes += run(bundled, [c for c in chats if c.corpus == "bundled"])
    rows = report(outcomes).rows
    assert rows["emergency"]["right_with_context"] == 1.0
    assert rows["benign"]["escalated"] == 0 and rows["benign"]["right_with_context"] >= rows["benign"]["right_alone"]
    follow_ups = rows["needs_context"]
    assert follow_ups["right_with_context"] >= 0.68 and follow_ups["right_alone"] <= 0.3
    standalone = rows["standalone"]
    assert standalone["p_at_1_with_context"] >= standalone["p_at_1_alone"] - 0.01
    leaks = off_topic(bundled, uncovered_questions([DATA / name for name in UNCOVERED_FILES]))
    assert leaks["answered_in_context"] <= leaks["answered_alone"] + 12, leaks
