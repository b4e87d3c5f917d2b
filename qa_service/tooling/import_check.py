"""Scores the importers against pages with known answers: for each page a ``<name>.expected.json`` beside
it lists the question/answer pairs (question, the answer's first and last words, section) and the
attribution a reader sees. Used by the tests and by ``scripts/import_check.py``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_service.corpus.importers import read_import_file
from qa_service.errors import CorpusError

PAGE_SUFFIXES = (".html", ".htm", ".md", ".docx", ".txt")
_LIST_MARK = re.compile(r"^(?:[-*•]|\d{1,3}[.)])\s+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "\u00a0": " "})


def normalise(text: str) -> str:
    return " ".join(text.translate(_QUOTES).split())


def _strip_list_mark(text: str) -> str:
    return _LIST_MARK.sub("", text)


@dataclass
class PageScore:
    page: Path
    expected: int
    found: int  # expected pairs imported with the right question and the right answer boundaries
    question_only: int  # right question, answer boundaries wrong
    imported: int
    junk: list[str]  # imported questions the page does not ask
    missing: list[str]
    wrong_answers: list[str]
    wrong_sections: list[str]
    attribution_errors: list[str] = field(default_factory=list)
    error: str | None = None


def expected_for(page: Path) -> dict[str, Any]:
    return dict(json.loads(page.with_name(page.name.rsplit(".", 1)[0] + ".expected.json").read_text("utf-8")))


def score_page(page: Path) -> PageScore:
    expected = expected_for(page)
    pairs = expected["pairs"]
    try:
        result = read_import_file(page, source_name=f"sources/{page.name}")
    except CorpusError as exc:
        missing = [pair["question"] for pair in pairs]
        return PageScore(page, len(pairs), 0, 0, 0, [], missing, [], [], [], error=str(exc))
    entries = result.entries
    by_question: dict[str, list[Any]] = {}
    for entry in entries:
        by_question.setdefault(normalise(entry.question), []).append(entry)
    found = question_only = 0
    missing, wrong_answers, wrong_sections = [], [], []
    wanted = {normalise(pair["question"]) for pair in pairs}
    for pair in pairs:
        candidates = by_question.get(normalise(pair["question"]), [])
        if not candidates:
            missing.append(pair["question"])
            continue
        entry = candidates.pop(0)
        answer = normalise(entry.answer)
        starts = _strip_list_mark(answer).startswith(normalise(_strip_list_mark(pair["answer_start"])))
        ends = answer.endswith(normalise(pair["answer_end"]))
        if starts and ends:
            found += 1
        else:
            question_only += 1
            wrong_answers.append(f"{pair['question']}: got {answer[:60]!r} ... {answer[-40:]!r}")
        if (pair.get("section") or None) != (entry.source.section or None):
            wrong_sections.append(
                f"{pair['question']}: section {entry.source.section!r}, expected {pair.get('section')!r}"
            )
    junk = [entry.question for entry in entries if normalise(entry.question) not in wanted]
    attribution_errors = []
    stated = expected.get("attribution", {})
    info = result.info
    for name in ("title", "url", "publisher", "author", "published", "updated"):
        got = getattr(info, name, None) if info is not None else None
        if name in stated and normalise(str(stated[name])) != normalise(str(got)):
            attribution_errors.append(f"{name}: got {got!r}, expected {stated[name]!r}")
        elif name not in stated and got is not None and name in {"published", "updated"}:
            attribution_errors.append(f"{name}: got {got!r}, the page states none")
    return PageScore(
        page, len(pairs), found, question_only, len(entries), junk, missing, wrong_answers, wrong_sections,
        attribution_errors,
    )  # fmt: skip


def pages_in(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix in PAGE_SUFFIXES and path.with_name(path.name.rsplit(".", 1)[0] + ".expected.json").exists()
    )


@dataclass
class CollectionScore:
    pages: list[PageScore]

    @property
    def expected(self) -> int:
        return sum(page.expected for page in self.pages)

    @property
    def found(self) -> int:
        return sum(page.found for page in self.pages)

    @property
    def imported(self) -> int:
        return sum(page.imported for page in self.pages)

    @property
    def junk(self) -> int:
        return sum(len(page.junk) for page in self.pages)

    @property
    def found_rate(self) -> float:
        return self.found / self.expected if self.expected else 0.0

    @property
    def junk_rate(self) -> float:
        return self.junk / self.imported if self.imported else 0.0

    @property
    def question_rate(self) -> float:
        return sum(page.found + page.question_only for page in self.pages) / self.expected if self.expected else 0.0


def score_folder(folder: Path) -> CollectionScore:
    return CollectionScore([score_page(page) for page in pages_in(folder)])


def render(score: CollectionScore, *, verbose: bool) -> list[str]:
    lines = []
    for page in score.pages:
        status = f"{page.found}/{page.expected} pairs, {len(page.junk)} junk of {page.imported}"
        lines.append(f"{page.page.name:<42} {status}")
        if verbose:
            details = [f"error: {page.error}"] if page.error else []
            details += [f"missing: {q}" for q in page.missing] + [f"answer: {a}" for a in page.wrong_answers]
            details += [f"junk: {q}" for q in page.junk] + [f"section: {s}" for s in page.wrong_sections]
            details += [f"attribution: {a}" for a in page.attribution_errors]
            lines += [f"    {detail}" for detail in details]
    sections_right = sum(p.expected - len(p.missing) - len(p.wrong_sections) for p in score.pages)
    attribution_pages = sum(1 for p in score.pages if not p.attribution_errors)
    lines.append(
        f"pages: {len(score.pages)}; pairs found with the right question and answer: {score.found}/{score.expected} "
        f"= {score.found_rate:.4f} (right question: {score.question_rate:.4f}); junk: {score.junk}/{score.imported} "
        f"= {score.junk_rate:.4f}; sections right: {sections_right}; attribution right on "
        f"{attribution_pages}/{len(score.pages)} pages"
    )
    return lines
