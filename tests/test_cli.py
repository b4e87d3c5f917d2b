"""The command line, driven through main([...]) with the fake embedder (fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa_service.cli import main
from qa_service.tooling.evaluation import METRIC_KEYS, NOANSWER_KEY
from tests.conftest import DATA, use_embedder
from tests.fakes import HashingEmbedder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the tiny corpus, the fake model, and settings from the environment."""
    (tmp_path / "corpus").mkdir()
    shutil.copy(DATA / "tiny_corpus.yaml", tmp_path / "corpus" / "tiny.yaml")
    fake = HashingEmbedder()
    use_embedder(monkeypatch, fake)
    monkeypatch.setenv("QA_MODEL", fake.name)
    monkeypatch.setenv("QA_ANSWER_THRESHOLD", "0.5")
    monkeypatch.setenv("QA_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_build_then_ask_json_matches_the_api(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build"]) == 0
    out = capsys.readouterr().out
    assert "7 entries, 15 vectors" in out and "left out (flagged advert): gadget" in out
    assert main(["ask", "How long do back spasms last?", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) == {"status", "answer", "alternatives", "message", "red_flag", "note", "disclaimer", "context"}
    assert body["status"] == "answered" and body["answer"]["id"] == "spasm-duration"
    assert body["answer"]["source"]["publisher"] == "example.org"


def test_ask_human_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["build"])
    capsys.readouterr()
    assert main(["ask", "How long do back spasms last?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[answered] Here is the answer from our clinic's FAQ.")
    assert "Most episodes of back spasms last for only a few days." in out
    assert "Source: Test FAQ, example.org, https://example.org/faq#duration; quotes Mayo Clinic" in out
    assert main(["ask", "banana bread"]) == 0
    assert capsys.readouterr().out.startswith("[no_answer] Our FAQ does not cover that topic")


def test_ask_escalates_a_red_flag(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["build"])
    capsys.readouterr()
    assert main(["ask", "I fell off a ladder and hurt my back", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "urgent" and body["red_flag"]["rule"] == "major-trauma" and body["answer"] is None
    assert main(["ask", "I fell off a ladder and hurt my back"]) == 0
    assert capsys.readouterr().out.startswith("[urgent] Your message may describe a medical emergency")


def test_ask_without_an_index_fails_with_advice(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "anything"]) == 1
    assert "no index has been built yet; run `qa-service build`" in capsys.readouterr().err


def test_ask_bad_question_exits_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["build"])
    assert main(["ask", "   "]) == 1
    assert "question is empty" in capsys.readouterr().err
    # bytes that are not UTF-8 on a command line reach Python as half characters
    assert main(["ask", b"back \xff spasm".decode("utf-8", "surrogateescape")]) == 1
    assert "question is not valid text (it holds '\\udcff' at 5)" in capsys.readouterr().err


def test_bench_question_files_are_checked_line_by_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = project / "q.jsonl"
    questions.write_text('{"query": "How long do spasms last?"}\n{"text": "no query"}\n')
    assert main(["bench", "--quick", "--questions", str(questions)]) == 1
    assert f"{questions}:2: each line needs a non-empty 'query' string" in capsys.readouterr().err


def test_build_reports_corpus_errors_with_file_and_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "corpus" / "broken.yaml").write_text(
        "version: 1\nentries:\n- id: spasm-duration\n  question: Q?\n  answer: A.\n"
    )
    assert main(["build"]) == 1
    err = capsys.readouterr().err
    assert "tiny.yaml:4: entry 'spasm-duration': duplicate id (first defined at corpus/broken.yaml:3)" in err
    assert not (project / "index" / "CURRENT").exists()


def test_invalid_setting_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA_ANSWER_THRESHOLD", "high")
    assert main(["validate"]) == 2
    assert "QA_ANSWER_THRESHOLD" in capsys.readouterr().err


def test_a_list_setting_that_is_not_json_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA_EXCLUDE_FLAGS", "advert")
    assert main(["validate"]) == 2
    assert "invalid setting: QA_EXCLUDE_FLAGS: not valid JSON" in capsys.readouterr().err
    monkeypatch.setenv("QA_EXCLUDE_FLAGS", '["adverts"]')  # a flag no entry can carry
    assert main(["validate"]) == 2
    assert "invalid setting: QA_EXCLUDE_FLAGS: Input should be 'truncated'" in capsys.readouterr().err


def test_a_settings_file_that_is_not_utf8_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_bytes(b"QA_CLINIC_NAME=Cl\xefnic\n")  # Latin-1
    assert main(["validate"]) == 2
    assert "invalid settings file .env: not UTF-8 text" in capsys.readouterr().err


def test_usage_errors_exit_2(project: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ask"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def write_dataset(folder: Path) -> tuple[Path, Path, Path]:
    faq = folder / "faq.jsonl"
    faq.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {
                    "id": "d-1",
                    "question": "How long do back spasms last?",
                    "answer": "A few days.",
                    "source": None,
                },
                {
                    "id": "d-2",
                    "question": "Is walking good for back pain?",
                    "answer": "Yes.",
                    "source": "site",
                },
                {"id": "d-3", "question": "What is a herbal remedy?", "answer": "", "source": None},
            ]
        )
    )
    queries = folder / "queries.jsonl"
    queries.write_text(
        '{"query": "how long do back spasms last", "relevant": ["d-1"]}\n'
        '{"query": "walking good for back pain", "relevant": ["d-2"]}\n'
        '{"query": "herbal remedy", "relevant": ["d-3"]}\n'
        '{"query": "is walking good", "relevant": ["d-1"]}\n'
    )
    noanswer = folder / "noanswer.jsonl"
    noanswer.write_text('{"query": "banana bread recipe", "relevant": []}\n')
    return faq, queries, noanswer


def test_eval_json_prints_exactly_the_metric_keys(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, queries, noanswer = write_dataset(project)
    assert main(["eval", "--faq", str(faq), "--queries", str(queries), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == list(METRIC_KEYS)
    # the last query is labelled with d-1 but matches d-2 best; d-1 ranks third (1/3)
    assert metrics == {
        "p_at_1": 0.75,
        "wrong_answer_rate": 0.25,  # that last query's reply shows d-2 alone
        "mrr_at_10": 0.8333,
        "recall_at_5": 1.0,
        "answered_correct": 0.75,
        "declined_answerable": 0.0,
    }
    assert main(["eval", "--faq", str(faq), "--queries", str(queries), "--noanswer", str(noanswer), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == [*METRIC_KEYS, NOANSWER_KEY]
    assert metrics[NOANSWER_KEY] == 1.0


def test_eval_table_and_sweep(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, queries, _ = write_dataset(project)
    assert main(["eval", "--faq", str(faq), "--queries", str(queries), "--sweep"]) == 0
    out = capsys.readouterr().out
    assert "3 entries; 4 answerable queries" in out and "p_at_1" in out and "threshold" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("0.")]) >= 29


def test_eval_on_a_corpus_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = project / "q.jsonl"
    queries.write_text('{"query": "how long do back spasms last", "relevant": ["spasm-duration"]}\n')
    assert main(["eval", "--faq", str(project / "corpus"), "--queries", str(queries), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["p_at_1"] == 1.0


def test_eval_rejects_bad_query_files(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, _, _ = write_dataset(project)
    bad = project / "bad.jsonl"
    bad.write_text('{"query": "ok", "relevant": ["d-1"]}\n{"query": "", "relevant": []}\n')
    assert main(["eval", "--faq", str(faq), "--queries", str(bad)]) == 1
    assert "bad.jsonl:2: each line needs a non-empty 'query' string" in capsys.readouterr().err
    bad.write_text('{"query": "ok", "relevant": ["d-1"]}\n{"query": "ok", "relevant": ["nope"]}\n')
    assert main(["eval", "--faq", str(faq), "--queries", str(bad)]) == 1
    assert "bad.jsonl:2: query 'ok' names unknown FAQ id(s) ['nope']" in capsys.readouterr().err
    bad.write_text("\n")
    assert main(["eval", "--faq", str(faq), "--queries", str(bad)]) == 1
    assert "bad.jsonl: no queries" in capsys.readouterr().err
    _, queries, _ = write_dataset(project)
    bad.write_text('{"query": "banana bread recipe", "relevant": ["d-1"]}\n')
    assert main(["eval", "--faq", str(faq), "--queries", str(queries), "--noanswer", str(bad)]) == 1
    assert "bad.jsonl:1: a question the FAQ does not answer has 'relevant' ids" in capsys.readouterr().err


def test_eval_refuses_output_paths_before_the_work(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, queries, _ = write_dataset(project)
    (project / "taken").write_text("a file")
    for option, path, message in [
        ("--features", project, "is a folder; name a file to write"),
        ("--features", project / "taken" / "f.jsonl", "is not a writable folder"),
        ("--report", project / "taken", "exists and is not a folder"),
    ]:
        assert main(["eval", "--faq", str(faq), "--queries", str(queries), option, str(path)]) == 1
        assert f"{path}: " in (err := capsys.readouterr().err) and message in err
    assert not (project / "eval-report").exists()  # refused before anything ran


def test_calibrate_names_the_line_of_a_bad_row(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features = project / "f.jsonl"
    row = {"kind": "answerable", "correct": True, "rival": None, "candidates": [{"score": 0.9}]}
    features.write_text("\n" + json.dumps(row) + "\n")
    assert main(["calibrate", "--features", str(features)]) == 1
    assert f"{features}:2: not a row of `qa-service eval --features`: a candidate lacks" in capsys.readouterr().err
    assert main(["calibrate", "--features", str(project)]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_build_script_is_a_thin_wrapper(project: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "build_index.py"
    text = script.read_text()
    assert "from qa_service.cli import main" in text and len(text.splitlines()) <= 6


def test_build_if_stale_builds_only_when_needed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--if-stale"]) == 0
    assert "building: " in capsys.readouterr().out
    assert main(["build", "--if-stale"]) == 0
    assert "nothing to build" in capsys.readouterr().out
    corpus_file = project / "corpus" / "tiny.yaml"
    corpus_file.write_text(corpus_file.read_text().replace("only a few days", "only a few days, usually"))
    assert main(["build", "--if-stale"]) == 0
    assert "building: the corpus changed since the index was built" in capsys.readouterr().out
    # editing only an excluded advert does not change what is served
    corpus_file.write_text(corpus_file.read_text().replace("Wonder Back Gadget", "Wonder Gadget"))
    assert main(["build", "--if-stale"]) == 0
    assert "nothing to build" in capsys.readouterr().out


def test_eval_writes_a_report_with_the_tradeoff_chart(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, queries, noanswer = write_dataset(project)
    report = project / "out"
    args = ["eval", "--faq", str(faq), "--queries", str(queries), "--noanswer", str(noanswer), "--report", str(report)]
    assert main(args) == 0
    assert f"report: {report / 'report.md'}" in capsys.readouterr().out
    markdown = (report / "report.md").read_text()
    assert "![answered / declined as the threshold moves](tradeoff.svg)" in markdown
    assert "| p_at_1 |" in markdown and "| 0.50 |" in markdown
    svg = (report / "tradeoff.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 4  # right, wrong, declined, declined no-answer
    assert "configured 0.5" in svg


def test_eval_features_feed_calibrate(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq, queries, noanswer = write_dataset(project)
    features = project / "toy.jsonl"
    assert main(["eval", "--faq", str(faq), "--queries", str(queries), "--noanswer", str(noanswer),
                 "--no-report", "--features", str(features), "--json"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in features.read_text().splitlines()]
    assert [row["kind"] for row in rows] == ["answerable"] * 4 + ["noanswer"] + ["reference"] * 200
    assert set(rows[0]) >= {"calibration", "query", "correct", "relevant", "rival", "candidates"}
    assert set(rows[0]["candidates"][0]) == {
        "id",
        "duplicates",
        "score",
        "dense_question",
        "dense_qa",
        "keyword",
        "known",
    }
    assert rows[4]["query"] == "banana bread recipe"  # every row names its question, so misses can be read
    assert all(row["query"] for row in rows)
    capsys.readouterr()
    assert main(["calibrate", "--features", str(features)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("coefficients (bias, question_z, qa_z, keyword, margin, known):") and "toy" in out


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("false", False)])
def test_serve_passes_the_access_log_setting_to_the_server(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    if value is not None:
        monkeypatch.setenv("QA_ACCESS_LOG", value)
    assert main(["serve"]) == 0
    assert calls and calls[0]["access_log"] is expected


def test_ask_explain_says_how_coverage_was_judged(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build"]) == 0
    capsys.readouterr()
    assert main(["ask", "how much does a massage cost", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "[no_answer] Our FAQ does not cover that topic" in out
    assert "coverage: NOT covered (intent:cost)" in out and "requests no entry's question mentions: cost" in out
    assert main(["ask", "how do I know if I have diabetes", "--explain", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "no_answer"  # stdout stays the API's JSON
    assert "words no entry uses: diabetes" in captured.err
    assert main(["ask", "How long do back spasms last?", "--explain"]) == 0
    assert "coverage: covered" in capsys.readouterr().out
