"""Property-based tests: arbitrary text never crashes the importers or the corpus loader; bad input
is a CorpusError that names the file (and the line where there is one)."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa_service.corpus.entries import load_corpus_file
from qa_service.corpus.importers.common import ImportResult
from qa_service.corpus.importers.html_page import parse_html
from qa_service.corpus.importers.markdown_page import parse_markdown
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
    _parses_or_names_the_file(lambda: parse_scraped_page(text, source_name="page.txt"), "page.txt")


def _parses_or_names_the_file(parse: Callable[[], ImportResult], name: str, *, with_line: bool = False) -> None:
    """The parse gives entries with a question, an answer and an id, or a CorpusError naming the file."""
    try:
        result = parse()
    except CorpusError as exc:
        assert name in exc.message and (not with_line or LOCATED.match(exc.message))
        return
    for entry in result.entries:
        assert entry.question.strip() and entry.answer.strip() and entry.id


# Fragments of the markup FAQ pages are made of, in any order and nesting, with arbitrary text between.
MARKUP = st.lists(
    st.one_of(
        NASTY,
        st.sampled_from([
            "<h2>", "</h2>", "<h3>Q?</h3>", "<p>", "</p>", "<b>", "</b>", "<br>", "<details><summary>", "</summary>",
            "</details>", "<dl><dt>", "</dt><dd>", "</dd></dl>", "<div class='toggle-title'>", "</div>",
            "<button aria-controls='x'>", "</button>", "<div id='x'>", "<table><tr><td>Why?</td><td>", "</td></tr>",
            "Q: ", "A. ", "<script>", "</script>", "<!--", "-->", "<ul><li>", "</li></ul>", "&amp;", "&#0;",
            '<script type="application/ld+json">{"@type":"FAQPage","mainEntity":[{"name":"A?",'
            '"acceptedAnswer":{"text":"<p>B</p>"}}]}</script>',
            "<html lang='en-GB'>", "<meta property='article:published_time' content='2 years ago'>",
        ]),
    ),
    max_size=40,
)  # fmt: skip


@FAST
@given(st.builds("".join, MARKUP))
@example("<h2>What is it?</h2><p>It is.</p><h2>What is it?</h2><p>Another.</p>")
def test_the_html_importer_never_crashes(text: str) -> None:
    _parses_or_names_the_file(lambda: parse_html(text, source_name="page.html"), "page.html")


MARKDOWN_LINES = st.lists(st.one_of(NASTY, st.sampled_from(["---", "title: [", "**Q: x?**", "A: y", "## Why?"])))


@FAST
@given(st.builds("\n".join, MARKDOWN_LINES))
@example("---\ntitle: [\n---\n## Why?\nBecause.")
def test_the_markdown_importer_never_crashes(text: str) -> None:
    _parses_or_names_the_file(lambda: parse_markdown(text, source_name="page.md"), "page.md", with_line=True)


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
