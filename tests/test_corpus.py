from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa_service.corpus.entries import FaqEntry, Source, dump_corpus, load_corpus, load_corpus_file
from qa_service.errors import CorpusError
from tests.conftest import DATA


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


ENTRY_A = """\
- id: a
  question: What is A?
  answer: A is a letter.
"""


def test_tiny_corpus_loads_with_all_fields() -> None:
    corpus = load_corpus_file(DATA / "tiny_corpus.yaml")
    assert len(corpus.entries) == 8
    first = corpus.entries[0]
    assert first.id == "spasm-duration"
    assert first.alternates == ["When will my back spasm go away?"]
    assert first.source.publisher == "example.org"
    assert first.source.quotes == ["Mayo Clinic"]
    heat = corpus.entries[1]
    assert heat.answer.splitlines()[1:] == ["- ice for swelling", "- heat for stiffness"]
    assert corpus.origins[0].endswith("tiny_corpus.yaml:4")


def test_duplicate_id_names_both_places(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "version: 1\nentries:\n" + ENTRY_A + ENTRY_A)
    with pytest.raises(CorpusError) as err:
        load_corpus_file(path)
    assert f"{path}:6: entry 'a': duplicate id (first defined at {path}:3)" == str(err.value)


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    write(tmp_path / "one.yaml", "version: 1\nentries:\n" + ENTRY_A)
    write(tmp_path / "two.yaml", "version: 1\nentries:\n" + ENTRY_A)
    with pytest.raises(CorpusError, match=r"two\.yaml:3: entry 'a': duplicate id \(first defined at .*one\.yaml:3\)"):
        load_corpus(tmp_path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- id: b\n  question: '  '\n  answer: B.\n", "entry 'b': question: question is empty"),
        ("- id: b\n  question: What is B?\n  answer: ''\n", "entry 'b': answer is empty"),
        ("- id: b\n  question: What is B?\n", "entry 'b': answer: Field required"),
        (
            "- id: b\n  question: What is B?\n  answer: B.\n  colour: red\n",
            "entry 'b': colour: unknown field",
        ),
        (
            "- id: b\n  question: What is B?\n  answer: B.\n  source: {site: x}\n",
            "entry 'b': source.site: unknown field",
        ),
        ("- id: b\n  question: What is B?\n  answer: B.\n  flags: [urgent]\n", "unknown flag 'urgent'"),
        ("- id: 'has space'\n  question: Q?\n  answer: B.\n", "must be 1-160 letters"),
        ("- id: b\n  question: Q?\n  answer: B.\n  duplicates: [zzz]\n", "duplicates names unknown id 'zzz'"),
        ("- just a string\n", "an entry must be a mapping"),
    ],
)
def test_invalid_entries_name_file_line_and_entry(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path / "c.yaml", "version: 1\nentries:\n" + ENTRY_A + entry)
    with pytest.raises(CorpusError) as err:
        load_corpus_file(path)
    assert str(err.value).startswith(f"{path}:6: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "where_and_problem"),
    [
        ("version: 1\nentries:\n- id: a\n  question: [unclosed\n  answer: x\n", r"\d+: invalid YAML"),
        (
            "version: 1\nentries:\n- id: a\n  question: Q?\n  answer: one\n  answer: two\n",
            "6: invalid YAML: duplicate key 'answer'",
        ),
        (  # a character YAML forbids
            'version: 1\nentries:\n- id: a\n  question: "Q\x00?"\n  answer: x\n',
            r"4: invalid YAML: the character '\\x00' is not allowed",
        ),
        (  # a list as a key
            "version: 1\nentries:\n- id: a\n  question: Q?\n  ? [1, 2]\n  : y\n  answer: x\n",
            "5: invalid YAML: a key must be a plain value",
        ),
    ],
)
def test_invalid_yaml_names_its_line(tmp_path: Path, text: str, where_and_problem: str) -> None:
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(CorpusError, match=rf"{path}:{where_and_problem}"):
        load_corpus_file(path)


def test_aliases_that_stand_for_billions_of_values_are_refused(tmp_path: Path) -> None:
    # 500 bytes: nine levels of nine aliases each, 9**9 flags once written out; the seventh level (line
    # 13) already stands for 9**7. Quoting the flags in the "unknown flag" message, as the loader once
    # did, wrote them all out and never ended.
    levels = ["    - &l0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"    - &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
    text = "version: 1\nentries:\n- id: a\n  question: Q?\n  answer: x\n  flags:\n" + "\n".join(levels) + "\n"
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(CorpusError, match=rf"{path}:13: invalid YAML: anchors and aliases here stand for over"):
        load_corpus_file(path)


def test_an_alias_may_repeat_a_part_of_the_file(tmp_path: Path) -> None:
    text = (
        "version: 1\nentries:\n"
        "- id: a\n  question: A?\n  answer: x\n  source: &cdc {publisher: CDC, url: 'https://www.cdc.gov/'}\n"
        "- id: b\n  question: B?\n  answer: y\n  source: *cdc\n"
    )
    entries = load_corpus_file(write(tmp_path / "c.yaml", text))
    assert [e.source.publisher for e in entries.entries] == ["CDC", "CDC"]


def test_an_alias_inside_its_own_value_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml", "version: 1\nentries:\n- &a\n  id: x\n  question: q\n  answer: a\n  alternates: [*a]\n"
    )
    with pytest.raises(
        CorpusError, match=rf"{path}:3: invalid YAML: an alias here refers to the value that contains it"
    ):
        load_corpus_file(path)


def test_wrong_top_level_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "- id: a\n")
    with pytest.raises(CorpusError, match="mapping with 'version' and 'entries'"):
        load_corpus_file(path)
    path = write(tmp_path / "d.yaml", "version: 2\nentries: []\n")
    with pytest.raises(CorpusError, match="unsupported corpus version 2"):
        load_corpus_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"version: 1\nentries:\n- id: a\n  question: caf\xe9?\n  answer: x\n")
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_corpus_file(path)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no corpus entries"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")


def test_sources_folder_is_not_read_as_corpus(tmp_path: Path) -> None:
    shutil.copy(DATA / "tiny_corpus.yaml", tmp_path / "tiny.yaml")
    write(tmp_path / "sources" / "junk.yaml", "not: a corpus")
    assert len(load_corpus(tmp_path).entries) == 8


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    entries = [
        FaqEntry(
            id="x",
            question="Why?",
            answer="Because:\n- one\n- two",
            alternates=["How come?"],
            source=Source(title="T", quotes=["Alex Tauberg, D.C."]),
            flags=["truncated"],
        ),
        FaqEntry(id="y", question="What: a colon?", answer="Yes: 'quoted' and \"double\" # not a comment"),
    ]
    path = write(tmp_path / "c.yaml", dump_corpus(entries, header="a header\n\nsecond line"))
    text = path.read_text()
    assert text.startswith("# a header\n#\n# second line\n")
    assert "answer: |-\n    Because:\n    - one\n" in text  # lists stay readable block text
    assert list(load_corpus_file(path).entries) == entries


def test_content_hash_ignores_file_layout(tmp_path: Path) -> None:
    corpus = load_corpus_file(DATA / "tiny_corpus.yaml")
    first, rest = corpus.entries[:3], corpus.entries[3:]
    write(tmp_path / "split" / "a.yaml", dump_corpus(first))
    write(tmp_path / "split" / "b.yaml", dump_corpus(rest))
    assert load_corpus(tmp_path / "split").content_hash() == corpus.content_hash()
