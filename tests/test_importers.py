from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qa_service.cli import main
from qa_service.corpus.entries import load_corpus, load_corpus_file
from qa_service.corpus.importers import import_into_corpus, read_import_file
from qa_service.corpus.importers.scraped_page import extract_quotes, parse_scraped_page
from qa_service.errors import CorpusError
from tests.conftest import DATA, ROOT, SEED_PAGE

RAW = SEED_PAGE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed() -> dict[str, object]:
    result = parse_scraped_page(RAW, source_name="sources/treatment-faq.txt")
    return {entry.id: entry for entry in result.entries} | {"__notes__": result.notes}  # type: ignore[return-value]


def entries(seed: dict[str, object]) -> list:  # type: ignore[type-arg]
    return [value for key, value in seed.items() if key != "__notes__"]


def test_every_question_of_the_page_is_kept(seed: dict[str, object]) -> None:
    page_questions = [
        line.strip() for line in RAW.splitlines() if line.strip().endswith("?") and not line.startswith(" ")
    ]
    imported = [entry.question for entry in entries(seed)]
    for question in page_questions:
        assert question in imported
    # 71 question lines (one question asked twice), the headline (two snippets), six site sections
    assert len(page_questions) == 71
    assert len(imported) == 79


def test_headline_question_with_its_summary_answers(seed: dict[str, object]) -> None:
    first = seed["what-type-treatment-is-best-for-upper-back-muscle-spasm"]
    second = seed["what-type-treatment-is-best-for-upper-back-muscle-spasm-2"]
    assert first.question == "What type treatment is best for upper back muscle spasm?"
    assert first.answer.splitlines()[0].startswith("1. Massage.")
    assert first.answer.splitlines()[5].startswith("6. Stretches and Exercises.")
    assert "truncated" in first.flags  # list items end with "..."
    assert second.answer.startswith("Use an ice pack")
    assert second.answer.endswith("connective tissue.")  # the glued date is not part of the advice
    assert second.source.published == "2021-09-16"
    assert first.source.author == "Israel Carter"
    # the byline's "Published 2 years ago" is relative to a day the page does not state: not stored as a date
    assert first.source.published is None and first.source.updated is None
    assert "relative_date" in first.flags and "'2 years ago'" in (first.notes or "")
    assert "relative_date" not in second.flags  # dated by its own snippet
    assert first.source.title == "Treatment FAQ"
    assert first.duplicates == [second.id] and second.duplicates == [first.id]


def test_repeated_question_keeps_both_answers_and_says_so(seed: dict[str, object]) -> None:
    one, two = seed["how-to-prevent-upper-back-spasms"], seed["how-to-prevent-upper-back-spasms-2"]
    assert one.question == two.question == "How to prevent upper back spasms?"
    assert one.answer != two.answer
    assert "duplicate_question" in one.flags and "duplicate_question" in two.flags
    assert one.duplicates == [two.id] and two.duplicates == [one.id]


def test_lists_are_preserved(seed: dict[str, object]) -> None:
    lower = seed["what-to-do-when-you-experience-a-lower-back-spasm"].answer.splitlines()
    assert lower[0] == "- Rest" and lower[-1] == "- Massage Therapy" and len(lower) == 8
    remedies = seed["what-are-home-remedies-for-muscle-spasms"].answer.splitlines()
    assert remedies[0] == "The 7 Best Natural Muscle Relaxers"
    assert remedies[2].startswith("1. Chamomile.") and remedies[-1] == "7. Rest. ..."
    quickly = seed["how-to-stop-muscle-spasms-quickly"].answer.splitlines()
    assert quickly[0].endswith("muscle spasms:") and quickly[2].startswith("- NSAIDs.")


def test_more_items_and_ellipses_flag_truncation(seed: dict[str, object]) -> None:
    relief = seed["how-to-get-relief-from-a-back-muscle-spasm"]
    assert "truncated" in relief.flags
    assert "More items" not in relief.answer
    assert "truncated" not in seed["how-long-do-back-muscle-spasms-take-to-heal"].flags
    assert "incomplete" in seed["what-causes-muscle-spasms-in-the-spine"].flags  # ends with "include:"
    assert "fragment" in seed["why-does-my-upper-back-hurt"].flags  # starts at "3. Poor Posture."


def test_site_sections_are_attributed_to_the_site(seed: dict[str, object]) -> None:
    sections = [e for e in entries(seed) if e.source.publisher == "doctorshealthpress.com"]
    assert [e.question for e in sections] == [
        "Clinical significance",
        "Risks",
        "Treatment",
        "Benefits",
        "Prevention",
        "Symptoms",
    ]
    for entry in sections:
        assert entry.source.section == entry.question
        assert "needs_question" in entry.flags
        assert "See more on" not in entry.answer
        assert entry.source.author is None  # the page's byline is not the site's author
    assert "truncated" in seed["risks"].flags and "truncated" not in seed["prevention"].flags
    notes = " ".join(seed["__notes__"])  # type: ignore[arg-type]
    assert "section 'Overview' has no answer text" in notes


def test_advert_is_flagged(seed: dict[str, object]) -> None:
    advert = [e.id for e in entries(seed) if "advert" in e.flags]
    assert advert == ["what-is-spinal-backrack"]


def test_page_furniture_is_dropped(seed: dict[str, object]) -> None:
    for entry in entries(seed):
        lines = entry.answer.splitlines()
        assert "image" not in lines
        assert not any(re.fullmatch(r"(?:[A-Z0-9] ){10,}[A-Z0-9]", line) for line in lines)
        assert "Advertisement" not in entry.answer and "Getty Images" not in entry.answer
    notes = " ".join(seed["__notes__"])  # type: ignore[arg-type]
    assert "dropped navigation line" in notes and "removed photo credit" in notes


def test_answers_are_the_page_text_word_for_word(seed: dict[str, object]) -> None:
    page = " ".join(RAW.split())
    for entry in entries(seed):
        for line in entry.answer.splitlines():
            text = re.sub(r"^(?:- |\d+\. )", "", line).strip()
            if text:
                assert text in page, (entry.id, text)


def test_quoted_experts_and_organisations(seed: dict[str, object]) -> None:
    assert seed["why-does-my-upper-back-keep-spasming"].source.quotes == ["Medhat Mikhael, M.D."]
    assert seed["how-to-prevent-upper-back-spasms"].source.quotes == ["Alex Tauberg, D.C."]  # "Tauberg also offers"
    assert seed["why-does-my-upper-back-spasm"].source.quotes == ["Alex Tauberg, D.C."]
    assert seed["how-to-help-a-spasm-in-the-upper-back"].source.quotes == ["Mayo Clinic"]
    assert seed["how-to-relieve-muscle-spasms-in-upper-back"].source.quotes == ["University of Nebraska-Lincoln"]
    assert seed["what-is-the-best-treatment-for-muscle-spasms"].source.quotes == ["Dr. Loren Fishmen"]
    assert seed["what-is-the-best-exercise-for-upper-back-pain"].source.quotes == ["American Council on Exercise (ACE)"]
    assert seed["how-long-do-back-muscle-spasms-take-to-heal"].source.quotes == []


def test_quote_extraction_ignores_pronouns_and_sentence_starts() -> None:
    assert extract_quotes("Though generally not serious, he says.", "") == []
    assert extract_quotes("Your doctor may suggest stretches.", "") == []
    assert extract_quotes("The Mayo Clinic recommends rest. Dr. Ann Lee agrees.", "") == [
        "Mayo Clinic",
        "Dr. Ann Lee",
    ]


def test_ids_are_stable_and_match_the_bundled_corpus(seed: dict[str, object]) -> None:
    again = parse_scraped_page(RAW, source_name="sources/treatment-faq.txt")
    assert [e.id for e in again.entries] == [e.id for e in entries(seed)]
    bundled = load_corpus(ROOT / "corpus")
    assert {e.id for e in bundled.entries} == {e.id for e in entries(seed)}


def test_source_line_points_into_the_raw_file(seed: dict[str, object]) -> None:
    entry = seed["how-long-do-back-muscle-spasms-take-to-heal"]
    path, line = entry.source.file.split("#L")
    assert path == "sources/treatment-faq.txt"
    assert RAW.splitlines()[int(line) - 1] == entry.question


# --- writing into a corpus folder ---------------------------------------------------------------


def test_import_writes_corpus_and_keeps_the_raw_source(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    summary = import_into_corpus(SEED_PAGE, corpus)
    assert summary.corpus_file == corpus / "treatment-faq.yaml"
    assert (corpus / "sources" / "treatment-faq.txt").read_text() == RAW
    assert len(load_corpus_file(summary.corpus_file).entries) == 79


def test_reimporting_an_unchanged_page_keeps_reviewed_edits_byte_for_byte(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    import_into_corpus(SEED_PAGE, corpus)
    edited = (
        (corpus / "treatment-faq.yaml").read_text().replace("  alternates: []\n", "  alternates:\n  - Reviewed\n", 1)
    )
    (corpus / "treatment-faq.yaml").write_text(edited + "# reviewed\n")
    summary = import_into_corpus(SEED_PAGE, corpus)
    assert not summary.written and len(summary.report.kept_edits) == 1 and summary.report.unchanged == 78
    assert not summary.report.conflicts and (corpus / "treatment-faq.yaml").read_text() == edited + "# reviewed\n"


def test_a_corpus_file_from_another_source_is_replaced_only_with_force(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (tmp_path / "pay.csv").write_text("question,answer\nHow do I pay?,Cash.\n")
    import_into_corpus(tmp_path / "pay.csv", corpus, name="treatment-faq")
    before = (corpus / "treatment-faq.yaml").read_text()
    with pytest.raises(CorpusError, match=r"already exists and was not imported from treatment-faq\.txt"):
        import_into_corpus(SEED_PAGE, corpus)
    assert (corpus / "treatment-faq.yaml").read_text() == before
    import_into_corpus(SEED_PAGE, corpus, force=True)
    assert len(load_corpus_file(corpus / "treatment-faq.yaml").entries) == 79


def test_import_refuses_ids_that_clash_with_other_files(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    import_into_corpus(SEED_PAGE, corpus)
    csv_file = tmp_path / "extra.csv"
    csv_file.write_text("id,question,answer\nrisks,What are the risks?,Some.\n")
    with pytest.raises(CorpusError, match="duplicate id"):
        import_into_corpus(csv_file, corpus)
    assert not (corpus / "extra.yaml").exists()
    assert not (corpus / "sources" / "extra.csv").exists()


def test_cli_import_reports_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    assert main(["import", str(SEED_PAGE), "--corpus-dir", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "imported 79 question/answer pairs" in out and "what-is-spinal-backrack: advert" in out
    assert main(["import", str(SEED_PAGE), "--corpus-dir", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "re-import: 0 added, 0 changed, 0 removed, 0 conflict(s), 0 kept corpus edit(s), 79 unchanged" in out
    assert "treatment-faq.yaml is unchanged" in out
    assert main(["import", str(tmp_path / "nope.txt"), "--corpus-dir", str(corpus)]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["import", str(SEED_PAGE), "--as-of", "two weeks ago", "--corpus-dir", str(corpus)])
    assert exit_info.value.code == 2 and "'two weeks ago' is not a day" in capsys.readouterr().err
    assert main(["validate", "--corpus-dir", str(corpus)]) == 0
    assert "79 entries in 1 file(s) are valid" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../escaped", "sub/x", ".hidden", "tab\there"])
def test_import_names_stay_inside_the_corpus_folder(tmp_path: Path, name: str) -> None:
    (tmp_path / "pay.csv").write_text("question,answer\nHow do I pay?,Cash.\n")
    corpus = tmp_path / "corpus"
    with pytest.raises(CorpusError, match="not a corpus file name"):
        import_into_corpus(tmp_path / "pay.csv", corpus, name=name)
    assert not corpus.exists() and not (tmp_path / "escaped.yaml").exists()


def test_import_never_replaces_a_raw_source_that_other_entries_cite(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    import_into_corpus(SEED_PAGE, corpus)
    other = tmp_path / "other" / SEED_PAGE.name  # same file name, other content
    other.parent.mkdir()
    other.write_text("question,answer\nHow do I pay?,Cash.\n")
    with pytest.raises(
        CorpusError, match=r"already kept as the raw source of other corpus entries .*treatment-faq\.yaml"
    ):
        import_into_corpus(other, corpus, fmt="csv", name="payments")
    assert (corpus / "sources" / SEED_PAGE.name).read_text() == RAW and not (corpus / "payments.yaml").exists()
    # re-importing the page itself over its own corpus file may refresh the copy
    import_into_corpus(SEED_PAGE, corpus, force=True)


def test_a_failed_import_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "dir.yaml").mkdir(parents=True)
    (tmp_path / "pay.csv").write_text("question,answer\nHow do I pay?,Cash.\n")
    assert main(["import", str(tmp_path / "pay.csv"), "--name", "dir", "--force", "--corpus-dir", str(corpus)]) == 1
    assert "dir.yaml: is not a file" in capsys.readouterr().err
    assert not (corpus / "sources").exists()
    assert main(["import", str(tmp_path / "pay.csv"), "--corpus-dir", str(tmp_path / "pay.csv")]) == 1
    assert "pay.csv: is not a folder" in capsys.readouterr().err
    (corpus / "sources").write_text("a file where the raw copies go")
    assert main(["import", str(tmp_path / "pay.csv"), "--corpus-dir", str(corpus)]) == 1
    assert "sources: cannot write" in capsys.readouterr().err
    assert not (corpus / "pay.yaml").exists()


# --- spreadsheets -----------------------------------------------------------------------------


def test_csv_import(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "\ufeffQuestion,Answer,Source,Alternates\n"
        'Do you take walk-ins?,"Yes, mornings only.\n- weekdays\n- 8-11am",'
        "https://www.example.org/faq,Walk in?|No appointment?\n"
        "Where do I park?,Behind the building.,Example Clinic,\n",
        encoding="utf-8",
    )
    result = read_import_file(path)
    first, second = result.entries
    assert first.id == "do-you-take-walk-ins"
    assert first.answer == "Yes, mornings only.\n- weekdays\n- 8-11am"
    assert first.source.url == "https://www.example.org/faq" and first.source.publisher == "example.org"
    assert first.alternates == ["Walk in?", "No appointment?"]
    assert second.source.publisher == "Example Clinic"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("question,source\nQ?,x\n", "faq.csv:1: missing column(s) answer"),
        ("question,answer,category\nQ?,A,x\n", "faq.csv:1: unknown column(s) category"),
        (
            'question,answer\n"Q1?","multi\nline"\n,Empty question\n',
            "faq.csv:4: entry 'pending': question: question is empty",
        ),
        ("question,answer\nQ?,\n", "faq.csv:2: entry 'pending': answer is empty"),
        ("question,answer\nQ?,A,extra\n", "faq.csv:2: expected 2 cells, found 3"),
        ("", "faq.csv:1: the file is empty"),
        ("id,question,answer\nx,Q?,A\nx,R?,B\n", "faq.csv:3: entry 'x': duplicate id (first defined at"),
        ("question,Question,answer\nQ?,R?,A\n", "faq.csv:1: column(s) question appear more than once"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        read_import_file(path)
    assert message in str(err.value)
    assert str(err.value).startswith(str(path))


def test_jsonl_import_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    rows = [
        {"id": "a1", "question": "Q one?", "answer": "A one.", "source": {"title": "T", "author": "Dr. X"}},
        {"question": "Q two?", "answer": "A two.", "source": None},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    first, second = read_import_file(path).entries
    assert first.id == "a1" and first.source.author == "Dr. X"
    assert second.id == "q-two"
    for bad, message in [
        ('{"question": "Q?", "answer": "A."}\n{not json}\n', "faq.jsonl:2: invalid JSON"),
        ('["a list"]\n', "faq.jsonl:1: each line must be a JSON object"),
        ('{"question": "Q?"}\n', "faq.jsonl:1: missing column(s) answer"),
        ('{"question": 3, "answer": "A."}\n', "faq.jsonl:1: question must be text"),
        (
            '{"question": "Q?", "answer": "A.", "source": 5}\n',
            "faq.jsonl:1: source must be text or an object",
        ),
        (
            '{"question": "Q?", "answer": "A."}\n{"question": "\\ud800", "answer": "A."}\n',
            "faq.jsonl:2: holds an escape",
        ),
        ('{"id": "x", "id": "y", "question": "Q?", "answer": "A."}\n', "faq.jsonl:1: key 'id' appears twice"),
        ("[" * 100_000 + "]" * 100_000 + "\n", "faq.jsonl:1: invalid JSON: nested too deeply"),
    ]:
        path.write_text(bad)
        with pytest.raises(CorpusError, match=re.escape(message)):
            read_import_file(path)


def test_dataset_rows_without_answers_load_for_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text('{"id": "ADAM_1_1", "question": "What is X?", "answer": "", "source": "https://nlm.nih.gov/x"}\n')
    with pytest.raises(CorpusError, match="answer is empty"):
        read_import_file(path)
    (entry,) = read_import_file(path, require_answers=False).entries
    assert entry.id == "ADAM_1_1" and entry.answer == ""


def test_tiny_fixture_is_a_valid_corpus() -> None:
    assert len(load_corpus_file(DATA / "tiny_corpus.yaml").entries) == 8
