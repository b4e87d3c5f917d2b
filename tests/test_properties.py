"""Property-based tests: arbitrary text never crashes the importers or the corpus loader; bad input
is a CorpusError that names the file (and the line where there is one)."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa_service.corpus.entries import load_corpus_file
from qa_service.corpus.importers.scraped_page import parse_scraped_page
from qa_service.corpus.importers.tabular import parse_csv, parse_jsonl
from qa_service.errors import CorpusError

# Text with the characters that break parsers: controls, zero-width, RTL marks, quotes, emoji, YAML syntax.
NASTY = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([*"\u200b\u200f\u202e\ufeff\x00\t\r\n:-#|>&*!%@`'\",[]{}?", "\U0001f600"]),
    ),
    max_size=400,
)
LINES = st.lists(st.one_of(NASTY, st.sampled_from(["question?", "- item", "More items...", "See more on x.com"])))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOCATED = re.compile(r"^\S+?(:\d+)?: ")


@FAST
@given(st.builds("\n".join, LINES))
@example("What is it?\nIt is.\n\nWhat is it?\nAnother answer...")
def test_the_page_importer_never_crashes(text: str) -> None:
    try:
        result = parse_scraped_page(text, source_name="page.txt")
    except CorpusError as exc:
        assert "page.txt" in exc.message
        return
    for entry in result.entries:
        assert entry.question.strip() and entry.id


@FAST
@given(NASTY)
@example('question,answer,source\n"a?","b",\n"unterminated')
def test_the_csv_importer_never_crashes(text: str) -> None:
    try:
        parse_csv(text, path=Path("faq.csv"))
    except CorpusError as exc:
        assert LOCATED.match(exc.message) and "faq.csv" in exc.message


@FAST
@given(
    st.lists(
        st.one_of(
            NASTY,
            st.builds(
                json.dumps,
                st.dictionaries(
                    st.sampled_from(["question", "answer", "source", "x"]), st.one_of(NASTY, st.integers(), st.none())
                ),
            ),
        )
    )
)
def test_the_jsonl_importer_never_crashes(lines: list[str]) -> None:
    try:
        parse_jsonl("\n".join(lines), path=Path("faq.jsonl"))
    except CorpusError as exc:
        assert LOCATED.match(exc.message) and "faq.jsonl" in exc.message


@FAST
@given(NASTY)
@example("version: 1\nentries:\n- id: a\n  question: q\n  answer: a\n  answer: twice\n")
@example("version: 1\nentries: [{id: a, question: '', answer: x}]")
def test_the_corpus_loader_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            load_corpus_file(path)
        except CorpusError as exc:
            assert exc.message.startswith(str(path)) and LOCATED.match(exc.message.replace(folder, "F"))


@given(st.text(max_size=300))
@FAST
def test_deidentification_never_fails_and_keeps_text_outside_identifiers(text: str) -> None:
    from qa_service.ops.privacy import default_deidentifier

    deidentifier = default_deidentifier()
    spans = deidentifier.find(text)
    assert all(0 <= a.start < a.end <= len(text) for a in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert isinstance(deidentifier.scrub(text), str)
