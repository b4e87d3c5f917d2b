"""Importers: an FAQ page (HTML, Markdown, Word, scraped text) or a CSV/JSONL spreadsheet, into a corpus
YAML file; re-importing an updated page merges it with the staff's edits."""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from qa_service.corpus.entries import (
    CORPUS_FORMAT_VERSION,
    FaqEntry,
    check_entries,
    corpus_files,
    dump_corpus,
    load_corpus_file,
    write_text_atomically,
)
from qa_service.corpus.importers.common import ImportResult, read_text
from qa_service.corpus.importers.html_page import parse_html
from qa_service.corpus.importers.markdown_page import parse_markdown
from qa_service.corpus.importers.reimport import MergeReport, merge_import
from qa_service.corpus.importers.scraped_page import parse_scraped_page
from qa_service.corpus.importers.tabular import parse_csv, parse_jsonl
from qa_service.corpus.importers.word import parse_docx
from qa_service.errors import CorpusError

Format = Literal["auto", "text", "page", "html", "markdown", "docx", "csv", "jsonl"]
SOURCES_DIR = "sources"
_SUFFIXES = {
    ".html": "html", ".htm": "html", ".xhtml": "html", ".shtml": "html", ".php": "html", ".asp": "html",
    ".aspx": "html", ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown", ".docx": "docx",
    ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
}  # fmt: skip
_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)

__all__ = ["Format", "ImportResult", "ImportSummary", "import_into_corpus", "read_import_file"]


def detect_format(path: Path, text: str | None = None) -> str:
    """The importer for a file: by its suffix, else an HTML page by its start, else a scraped text page."""
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        return kind
    if text is not None and _HTML_START.match(text[:2000]):
        return "html"
    return "text"


def read_import_file(
    path: Path,
    fmt: Format = "auto",
    *,
    source_name: str | None = None,
    require_answers: bool = True,
    as_of: date | None = None,
) -> ImportResult:
    """Parse a file into entries (nothing is written)."""
    name = source_name or path.name
    if fmt == "docx" or (fmt == "auto" and path.suffix.lower() == ".docx"):
        return parse_docx(path, source_name=name)
    text = read_text(path)
    kind = detect_format(path, text) if fmt == "auto" else fmt
    if kind == "csv":
        return parse_csv(text, path=path, require_answers=require_answers)
    if kind == "jsonl":
        return parse_jsonl(text, path=path, require_answers=require_answers)
    if kind == "html":
        return parse_html(text, source_name=name, as_of=as_of, path=str(path))
    if kind == "markdown":
        return parse_markdown(text, source_name=name, as_of=as_of, path=str(path))
    return parse_scraped_page(text, source_name=name, as_of=as_of)


@dataclass(frozen=True)
class ImportSummary:
    corpus_file: Path
    source_copy: Path
    result: ImportResult  # what the page gives
    report: MergeReport  # what the corpus file holds after the import, and what changed
    written: bool  # False for a dry run, or when nothing changed
    forced: bool = False


# A corpus file name: no folders (the corpus is one flat folder), no hidden files, no control characters.
_NAME = re.compile(r"[^/\\.\x00-\x1f][^/\\\x00-\x1f]*")


def _cites(entry: FaqEntry, relative_name: str) -> bool:
    return (entry.source.file or "").split("#")[0] == relative_name


def _leading_comments(path: Path) -> str | None:
    """The comment lines a corpus file starts with (reviewers' notes are kept on re-import)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.removeprefix("#").removeprefix(" "))
    return "\n".join(lines) if lines else None


def import_into_corpus(
    source: Path,
    corpus_dir: Path,
    *,
    name: str | None = None,
    fmt: Format = "auto",
    force: bool = False,
    dry_run: bool = False,
    as_of: date | None = None,
) -> ImportSummary:
    """Import ``source`` as ``corpus_dir/<name>.yaml`` and keep the raw file in ``corpus_dir/sources/``.

    Importing again into the same file merges the page with the corpus (see ``reimport``): edits made
    in the corpus are kept, and a field changed both there and on the page is a conflict the corpus
    wins unless ``force``. A corpus file that was not imported from this source is refused unless
    ``force`` (then replaced), as are ids that clash with other corpus files; a raw source that other
    corpus files cite is never replaced. Writes are staged: on any error nothing changes, and
    ``dry_run`` writes nothing at all."""
    stem = name or source.stem
    if not _NAME.fullmatch(stem):
        raise CorpusError(
            f"{stem!r}: not a corpus file name (no folders, no leading '.'); pass --name with a plain name"
        )
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: is not a folder")
    target = corpus_dir / f"{stem}.yaml"
    if target.exists() and not target.is_file():
        raise CorpusError(f"{target}: is not a file; pass --name to import under another name")
    sources_dir = corpus_dir / SOURCES_DIR
    source_copy = sources_dir / source.name
    base_file = sources_dir / f"{stem}.imported.yaml"
    relative_name = f"{SOURCES_DIR}/{source.name}"
    result = read_import_file(source, fmt, source_name=relative_name, as_of=as_of)
    if not result.entries:
        reasons = "; ".join(result.notes[:3])
        raise CorpusError(f"{source}: no question/answer pairs found" + (f" ({reasons})" if reasons else ""))

    current = load_corpus_file(target).entries if target.is_file() else ()
    if current and not any(_cites(entry, relative_name) for entry in current):
        if not force:
            raise CorpusError(
                f"{target}: already exists and was not imported from {source.name}; pass --name to import "
                "under another name, or --force to replace it"
            )
        current = ()
    base: tuple[FaqEntry, ...] | None = None
    if current and base_file.is_file():
        base = load_corpus_file(base_file).entries
    elif current and source_copy.is_file():  # imported before base files were kept: parse the old copy
        base = tuple(read_import_file(source_copy, fmt, source_name=relative_name, as_of=as_of).entries)

    others: list[FaqEntry] = []
    origins: list[str] = []
    citing: list[str] = []  # other corpus files' entries whose answers cite the raw copy
    if corpus_dir.is_dir():
        for other in corpus_files(corpus_dir):
            if other.resolve() == target.resolve():
                continue
            loaded = load_corpus_file(other)
            others += loaded.entries
            origins += loaded.origins
            citing += [o for e, o in zip(loaded.entries, loaded.origins, strict=True) if _cites(e, relative_name)]
    report = merge_import(current, base, result.entries, force=force, taken_ids=set())
    check_entries([*report.entries, *others], [*(f"{target} (entry {e.id})" for e in report.entries), *origins])
    copy_needed = not source_copy.exists() or source_copy.resolve() != source.resolve()
    if copy_needed and citing and not _same_bytes(source, source_copy):
        raise CorpusError(
            f"{source_copy}: already kept as the raw source of other corpus entries (first: {citing[0]}); "
            f"rename {source} before importing it"
        )
    corpus_changed = list(report.entries) != list(current)
    if dry_run:
        return ImportSummary(target, source_copy, result, report, written=False, forced=force)

    header = (
        _leading_comments(target)
        if target.is_file()
        else f"Imported from {relative_name} by `qa-service import` (corpus format {CORPUS_FORMAT_VERSION}).\n"
        "Edit freely: ids are stable, and re-importing the page keeps your edits (see docs/corpus.md)."
    )
    base_header = f"What the last `qa-service import` of {relative_name} wrote; re-imports compare with it."
    staged = source_copy.with_name(f".{source_copy.name}.tmp")
    try:
        if copy_needed:  # staged first, put in place only once the corpus file is written
            sources_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staged)
        if corpus_changed:
            write_text_atomically(target, dump_corpus(report.entries, header=header or ""))
        write_text_atomically(base_file, dump_corpus(report.page_entries, header=base_header))
        if copy_needed:
            staged.replace(source_copy)
    except OSError as exc:
        raise CorpusError(f"{exc.filename or target}: cannot write: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):  # e.g. "sources" is a file: reported above
            staged.unlink(missing_ok=True)
    return ImportSummary(target, source_copy, result, report, written=corpus_changed, forced=force)


def _same_bytes(a: Path, b: Path) -> bool:
    return b.is_file() and a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
