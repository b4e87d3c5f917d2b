"""The HTML, Markdown and Word importers: the layouts clinic sites use, page furniture left out,
attribution from the page, relative dates, dry runs, and re-importing an updated page."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest

from qa_service.cli import main
from qa_service.corpus.entries import load_corpus_file
from qa_service.corpus.importers import import_into_corpus, read_import_file
from qa_service.corpus.importers.html_page import parse_html
from qa_service.corpus.importers.markdown_page import parse_markdown
from qa_service.errors import CorpusError
from qa_service.tooling.import_check import score_folder
from tests.conftest import DATA

PAGES = DATA / "import_pages"


def pairs(text: str, **kwargs: object) -> list[tuple[str, str, str | None]]:
    result = parse_html(text, source_name="sources/page.html", **kwargs)  # type: ignore[arg-type]
    return [(entry.question, entry.answer, entry.source.section) for entry in result.entries]


# --- the fixture collection ------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["dev", "holdout", "holdout2"])
def test_fixture_pages_meet_the_targets(folder: str) -> None:
    score = score_folder(PAGES / folder)
    assert len(score.pages) >= (25 if folder == "dev" else 10)
    misses = [
        f"{page.page.name}: {page.missing + page.wrong_answers}" for page in score.pages if page.found < page.expected
    ]
    junk = [f"{page.page.name}: {page.junk}" for page in score.pages if page.junk]
    assert score.found_rate >= 0.95, misses
    assert score.junk_rate <= 0.02, junk


def test_every_layout_family_is_in_the_collection() -> None:
    names = {path.suffix for path in (PAGES / "dev").iterdir()}
    assert {".html", ".md", ".docx"} <= names


# --- layouts ---------------------------------------------------------------------------------------------

WORDPRESS_TOGGLES = """<html><body><div class="entry-content">
<div class="toggle"><h4 class="toggle-title"><a href="#">Do I need a referral?</a></h4>
  <div class="toggle-content"><p>No, you can book directly.</p></div></div>
<div class="toggle"><h4 class="toggle-title"><a href="#">Insurance and payment</a></h4>
  <div class="toggle-content"><p><strong>Which insurers do you work with?</strong></p><p>Most major plans.</p>
  <p><strong>Can I pay by card?</strong></p><p>Yes, all major cards.</p></div></div>
<div class="toggle"><h4 class="toggle-title"><a href="#">How long is a session?</a></h4>
  <div class="toggle-content"><p>About 45 minutes.</p></div></div>
</div></body></html>"""


def test_wordpress_toggles_with_two_bold_sub_questions_in_one_section() -> None:
    assert pairs(WORDPRESS_TOGGLES) == [
        ("Do I need a referral?", "No, you can book directly.", None),
        ("Which insurers do you work with?", "Most major plans.", "Insurance and payment"),
        ("Can I pay by card?", "Yes, all major cards.", "Insurance and payment"),
        ("How long is a session?", "About 45 minutes.", None),
    ]


def test_q_and_a_paragraphs_in_font_tags() -> None:
    page = """<html><body><table><tr><td>
    <p><font face="Arial" size="2"><b>Q. How do I get my test results?</b></font></p>
    <p><font face="Arial" size="2">A. Call the surgery after 2pm.</font></p>
    <p><font face="Arial" size="2">Results take up to a week.</font></p>
    <font face="Verdana"><b>Q. Can I order repeat prescriptions online?</b><br>A. Yes, through the app.<br><br>
    <b>Q. Do you offer travel vaccines?</b><br>A. Some are free on the NHS.</font>
    </td></tr></table></body></html>"""
    assert pairs(page) == [
        ("How do I get my test results?", "Call the surgery after 2pm.\n\nResults take up to a week.", None),
        ("Can I order repeat prescriptions online?", "Yes, through the app.", None),
        ("Do you offer travel vaccines?", "Some are free on the NHS.", None),
    ]


def test_markdown_q_and_a_lines_headings_and_front_matter() -> None:
    text = """---
title: Physio FAQ
author: Riverside Physio team
date: 2024-03-01
---
# Physio FAQ

## Appointments

**Q: Do I need a referral?**
A: No. Book online or
call the front desk.

**Q: What should I wear?**

A: Loose clothing.

### How long is a session?

- 45 minutes for the first
- 30 minutes after that
"""
    result = parse_markdown(text, source_name="sources/faq.md")
    got = [(e.question, e.answer, e.source.section, e.source.file) for e in result.entries]
    assert got == [
        ("Do I need a referral?", "No. Book online or call the front desk.", "Appointments", "sources/faq.md#L10"),
        ("What should I wear?", "Loose clothing.", "Appointments", "sources/faq.md#L14"),
        (
            "How long is a session?",
            "- 45 minutes for the first\n- 30 minutes after that",
            "Appointments",
            "sources/faq.md#L18",
        ),
    ]
    source = result.entries[0].source
    assert (source.title, source.author, source.published) == ("Physio FAQ", "Riverside Physio team", "2024-03-01")


def test_json_ld_questions_the_page_does_not_show_are_imported() -> None:
    page = """<html><head><script type="application/ld+json">
    {"@context": "https://schema.org", "@graph": [{"@type": "Organization", "name": "Bright Dental"},
     {"@type": "FAQPage", "mainEntity": [
       {"@type": "Question", "name": "Do you treat children?",
        "acceptedAnswer": {"@type": "Answer",
                           "text": "<p>Yes, from age 2.</p><ul><li>Check-ups</li><li>Sealants</li></ul>"}},
       {"@type": "Question", "name": "Is parking free?", "acceptedAnswer": {"@type": "Answer", "text": "Yes."}}]}]}
    </script></head><body><h2>Is parking free?</h2><p>Yes, behind the practice.</p></body></html>"""
    result = parse_html(page, source_name="sources/page.html")
    assert [(e.question, e.answer) for e in result.entries] == [
        ("Is parking free?", "Yes, behind the practice."),  # the visible answer wins
        ("Do you treat children?", "Yes, from age 2.\n\n- Check-ups\n- Sealants"),
    ]
    assert result.entries[0].source.publisher == "Bright Dental"


def test_accordions_found_by_aria_attributes_whatever_the_class_names() -> None:
    page = """<html><body><div class="_3sRTx">
    <div role="heading" aria-level="2" class="_4x2Kd">Billing</div>
    <div class="_2Hij5"><button class="_1qJ7b" aria-expanded="false" aria-controls="a1">
      <span>Do you bill Medicare?</span></button>
    <div id="a1" role="region" hidden><p>Yes, we bulk bill pensioners.</p></div></div>
    <div class="_2Hij5"><button class="_1qJ7b" aria-expanded="false" aria-controls="a2">
      <span>Parking at the clinic</span></button>
    <div id="a2" role="region" hidden><p>Free parking at the rear.</p></div></div>
    </div></body></html>"""
    result = parse_html(page, source_name="sources/page.html")
    assert [(e.question, e.answer, e.source.section) for e in result.entries] == [
        ("Do you bill Medicare?", "Yes, we bulk bill pensioners.", "Billing"),
        ("Parking at the clinic", "Free parking at the rear.", "Billing"),
    ]
    assert result.entries[1].flags == ["needs_question"]  # a title, not a question: a reviewer rephrases it


def test_details_definition_lists_and_tables() -> None:
    page = """<html><body>
    <details><summary><h3>Can I bring a friend?</h3></summary><p>Yes.</p></details>
    <dl><dt>What should I bring?</dt><dd><p>Your card.</p><p>A list of medicines.</p></dd></dl>
    <table><tr><th>Question</th><th>Answer</th></tr><tr><td>Do you open on Sundays?</td><td>No.</td></tr></table>
    </body></html>"""
    assert pairs(page) == [
        ("Can I bring a friend?", "Yes.", None),
        ("What should I bring?", "Your card.\n\nA list of medicines.", None),
        ("Do you open on Sundays?", "No.", None),
    ]


def test_page_furniture_never_becomes_an_entry() -> None:
    page = """<html><body>
    <div class="cookie-banner"><p><strong>Do you accept cookies?</strong></p><p>We use cookies.</p></div>
    <nav><h3>Is running bad for your knees?</h3><p>Read our blog.</p></nav>
    <div class="hero"><h2>Planning a trip abroad?</h2><p>Book travel vaccines today.</p></div>
    <main><h2>Frequently asked questions</h2>
      <h3>What are your opening hours?</h3><p>8am to 6pm.</p>
      <h3>Do you take walk-ins?</h3><p>Mornings only.</p>
      <h3>Is there a lift?</h3><p>Yes.</p>
      <div class="share-buttons"><h3>Share this page?</h3><a href="https://facebook.com">Facebook</a></div>
      <h3>Still have questions?</h3><p>Call us on 01632 960000.</p>
    </main>
    <aside class="sidebar"><h3>Recent posts</h3>
      <ul><li><a href="/blog/knees">Is running bad for your knees?</a></li></ul></aside>
    <div class="related-posts"><ul><li><a href="/blog/flu">Should I get a flu jab?</a></li></ul></div>
    <footer><p><b>Where are we?</b></p><p>1 High Street.</p></footer>
    <script>document.write("<h3>Injected?</h3><p>no</p>")</script>
    </body></html>"""
    result = parse_html(page, source_name="sources/page.html")
    assert [e.question for e in result.entries] == [
        "What are your opening hours?",
        "Do you take walk-ins?",
        "Is there a lift?",
    ]
    assert any("call to action" in note for note in result.notes)
    assert all(e.source.section is None for e in result.entries)  # "Frequently asked questions" is the whole FAQ


# --- attribution and dates -------------------------------------------------------------------------------

ATTRIBUTED = """<!DOCTYPE html><html lang="en-GB"><head><title>FAQ | Oak Surgery</title>
<link rel="canonical" href="https://oak.example/faq"><meta property="og:site_name" content="Oak Surgery">
<meta name="author" content="Dr. Jane Moss"></head>
<body><p class="meta">Published 04/03/2024 · Updated 2 years ago</p>
<h2>Do I need to register?</h2><p>Yes.</p></body></html>"""


def test_attribution_comes_from_the_page_and_relative_dates_are_never_stored_as_dates() -> None:
    result = parse_html(ATTRIBUTED, source_name="sources/faq.html")
    source = result.entries[0].source
    assert (source.title, source.url, source.publisher, source.author) == (
        "FAQ | Oak Surgery",
        "https://oak.example/faq",
        "Oak Surgery",
        "Dr. Jane Moss",
    )
    assert source.published == "2024-03-04"  # en-GB: day first
    assert source.updated is None and "relative_date" in result.entries[0].flags
    assert "updated '2 years ago'" in (result.entries[0].notes or "")


def test_a_relative_date_resolves_against_the_day_the_page_was_saved() -> None:
    result = parse_html(ATTRIBUTED, source_name="sources/faq.html", as_of=date(2026, 12, 7))
    entry = result.entries[0]
    assert entry.source.updated == "2024" and "relative_date" not in entry.flags  # "2 years ago": a year, no more
    assert "resolved against 2026-12-07" in (entry.notes or "")
    saved = ATTRIBUTED.replace("<!DOCTYPE html>", "<!DOCTYPE html><!--\n Page saved with SingleFile\n url: x\n "
                               "saved date: Mon Mar 03 2025 10:00:00 GMT+0000\n-->")  # fmt: skip
    assert parse_html(saved, source_name="sources/faq.html").entries[0].source.updated == "2023"


def test_seed_page_relative_byline_resolves_with_as_of() -> None:
    from tests.conftest import SEED_PAGE

    result = read_import_file(SEED_PAGE, as_of=date(2023, 6, 1))
    first = result.entries[0]
    assert (first.source.published, first.source.updated) == ("2021", "2021")
    assert "relative_date" not in first.flags


# --- Word ------------------------------------------------------------------------------------------------


def test_word_documents_with_headings_bold_questions_and_lists(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Clinic FAQ"
    document.core_properties.author = "Front desk"
    document.add_heading("Appointments", 1)
    document.add_heading("How long is a visit?", 2)
    document.add_paragraph("About 30 minutes. Please bring:")
    document.add_paragraph("your card", style="List Bullet")
    document.add_paragraph("your medicines", style="List Bullet")
    document.add_paragraph().add_run("Can I cancel online?").bold = True
    document.add_paragraph("Yes, up to a day before.")
    path = tmp_path / "faq.docx"
    document.save(str(path))
    result = read_import_file(path, source_name="sources/faq.docx")
    assert [(e.question, e.answer, e.source.section, e.source.file) for e in result.entries] == [
        ("How long is a visit?", "About 30 minutes. Please bring:\n\n- your card\n- your medicines", "Appointments",
         "sources/faq.docx#P2"),
        ("Can I cancel online?", "Yes, up to a day before.", "Appointments", "sources/faq.docx#P6"),
    ]  # fmt: skip
    assert (result.entries[0].source.title, result.entries[0].source.author) == ("Clinic FAQ", "Front desk")


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_files_get_a_message_naming_them_and_nothing_is_written(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    broken = tmp_path / "faq.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorpusError, match=r"faq\.docx: not a Word \.docx document"):
        import_into_corpus(broken, corpus)
    empty_zip = tmp_path / "empty.docx"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(CorpusError, match=r"empty\.docx: not a Word \.docx document"):
        import_into_corpus(empty_zip, corpus)
    front = tmp_path / "faq.md"
    front.write_text("---\ntitle: ok\nauthor: [unclosed\n---\n## Why?\nBecause.\n")
    with pytest.raises(CorpusError, match=r"faq\.md:\d+: front matter is not valid YAML"):
        import_into_corpus(front, corpus)
    nothing = tmp_path / "about.html"
    nothing.write_text("<html><body><h1>About us</h1><p>We are a clinic.</p></body></html>")
    with pytest.raises(CorpusError, match=r"about\.html: no question/answer pairs found"):
        import_into_corpus(nothing, corpus)
    latin1 = tmp_path / "old.html"
    latin1.write_bytes("<p><b>Q. Caf\xe9?</b></p>".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"old\.html: not UTF-8 text"):
        import_into_corpus(latin1, corpus)
    assert not corpus.exists()


# --- dry run and re-import -------------------------------------------------------------------------------

PAGE_V1 = """<html><head><title>FAQ</title></head><body>
<h2>Do I need a referral?</h2><p>No, book directly.</p>
<h2>How long is a session?</h2><p>45 minutes.</p>
<h2>Do you offer home visits?</h2><p>Not at present.</p>
<h2>Is there parking?</h2><p>Yes, free.</p>
</body></html>"""


def test_dry_run_shows_pairs_and_skips_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "faq.html"
    page.write_text(PAGE_V1.replace("<body>", "<body><nav><a href='/'>Home</a></nav><h2>About us</h2><p>Hi.</p>"))
    corpus = tmp_path / "corpus"
    assert main(["import", str(page), "--dry-run", "--corpus-dir", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "would import 4 question/answer pairs" in out and "attribution: title: FAQ" in out
    assert "    Q: How long is a session?\n    A: 45 minutes." in out
    assert "heading 'About us' is not a question; skipped" in out
    assert not corpus.exists()


def test_reimport_reports_changes_keeps_ids_and_never_overwrites_staff_edits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, corpus = tmp_path / "faq.html", tmp_path / "corpus"
    page.write_text(PAGE_V1)
    import_into_corpus(page, corpus)
    corpus_file = corpus / "faq.yaml"
    # staff review: an alternate phrasing, and a reworded answer
    text = corpus_file.read_text()
    text = text.replace("alternates: []", "alternates:\n  - do I need my GP to send me", 1)
    text = text.replace("answer: Yes, free.", "answer: Yes, free for two hours.")
    corpus_file.write_text(text)
    # the page changes: an answer, a new question, one removed, and the parking answer (edited by staff too)
    page.write_text(
        PAGE_V1.replace("45 minutes.", "45 to 60 minutes.")
        .replace("<h2>Do you offer home visits?</h2><p>Not at present.</p>", "")
        .replace("Yes, free.", "Yes, paid.")
        .replace("</body>", "<h2>Can I bring my child?</h2><p>Yes.</p></body>")
    )
    before = corpus_file.read_text()
    assert main(["import", str(page), "--dry-run", "--corpus-dir", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert corpus_file.read_text() == before
    assert "re-import: 1 added, 1 changed, 1 removed, 1 conflict(s), 1 kept corpus edit(s), 0 unchanged" in out
    assert "conflict: is-there-parking: answer changed on the page and in the corpus" in out

    assert main(["import", str(page), "--corpus-dir", str(corpus)]) == 0
    entries = {e.id: e for e in load_corpus_file(corpus_file).entries}
    assert set(entries) == {"do-i-need-a-referral", "how-long-is-a-session", "is-there-parking", "can-i-bring-my-child"}
    assert entries["do-i-need-a-referral"].alternates == ["do I need my GP to send me"]  # kept
    assert entries["how-long-is-a-session"].answer == "45 to 60 minutes."  # taken from the page
    assert entries["is-there-parking"].answer == "Yes, free for two hours."  # conflict: the corpus wins
    # the conflict is settled: importing the same page again reports nothing new
    summary = import_into_corpus(page, corpus)
    assert not summary.report.conflicts and not summary.written
    # --force takes the page's version
    page.write_text(page.read_text().replace("Yes, paid.", "Yes, paid after 2 hours."))
    corpus_file.write_text(corpus_file.read_text().replace("free for two hours", "free for three hours"))
    forced = import_into_corpus(page, corpus, force=True)
    assert forced.report.conflicts and forced.report.changed["is-there-parking"] == ["answer"]
    assert {e.id: e for e in load_corpus_file(corpus_file).entries}["is-there-parking"].answer == (
        "Yes, paid after 2 hours."
    )


def test_a_reworded_question_keeps_its_id(tmp_path: Path) -> None:
    page, corpus = tmp_path / "faq.html", tmp_path / "corpus"
    page.write_text(PAGE_V1)
    import_into_corpus(page, corpus)
    page.write_text(PAGE_V1.replace("Is there parking?", "Is there parking at the clinic?"))
    summary = import_into_corpus(page, corpus)
    assert summary.report.changed == {"is-there-parking": ["question"]} and not summary.report.added
    assert "Is there parking at the clinic?" in [e.question for e in load_corpus_file(corpus / "faq.yaml").entries]


def test_the_bundled_corpus_survives_a_reimport_of_its_page(tmp_path: Path) -> None:
    from shutil import copytree

    from tests.conftest import ROOT

    corpus = tmp_path / "corpus"
    copytree(ROOT / "corpus", corpus)
    before = (corpus / "treatment-faq.yaml").read_text()
    summary = import_into_corpus(corpus / "sources" / "treatment-faq.txt", corpus)
    report = summary.report
    assert not report.added and not report.removed and not report.changed and not report.conflicts
    assert len(report.kept_edits) + report.unchanged == 79 and len(report.kept_edits) >= 70  # reviewed alternates
    assert not summary.written
    assert (corpus / "treatment-faq.yaml").read_text() == before
