"""Importers: a scraped FAQ page, or a CSV/JSONL spreadsheet, into a corpus YAML file."""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa_service.corpus.entries import (
    CORPUS_FORMAT_VERSION,
    check_entries,
    corpus_files,
    dump_corpus,
    load_corpus_file,
    write_text_atomically,
)
from qa_service.corpus.importers.common import ImportResult, read_text
from qa_service.corpus.importers.scraped_page import parse_scraped_page
from qa_service.corpus.importers.tabular import parse_csv, parse_jsonl
from qa_service.errors import CorpusError

Format = Literal["auto", "page", "csv", "jsonl"]
SOURCES_DIR = "sources"

__all__ = ["Format", "ImportResult", "ImportSummary", "import_into_corpus", "read_import_file"]


def detect_format(path: Path) -> Literal["page", "csv", "jsonl"]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    return "page"


def read_import_file(
    path: Path, fmt: Format = "auto", *, source_name: str | None = None, require_answers: bool = True
) -> ImportResult:
    """Parse a file into entries (nothing is written)."""
    text = read_text(path)
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind == "csv":
        return parse_csv(text, path=path, require_answers=require_answers)
    if kind == "jsonl":
        return parse_jsonl(text, path=path, require_answers=require_answers)
    return parse_scraped_page(text, source_name=source_name or path.name)


@dataclass(frozen=True)
class ImportSummary:
    corpus_file: Path
    source_copy: Path
    result: ImportResult


# A corpus file name: no folders (the corpus is one flat folder), no hidden files, no control characters.
_NAME = re.compile(r"[^/\\.\x00-\x1f][^/\\\x00-\x1f]*")


def import_into_corpus(
    source: Path, corpus_dir: Path, *, name: str | None = None, fmt: Format = "auto", force: bool = False
) -> ImportSummary:
    """Import ``source`` as ``corpus_dir/<name>.yaml`` and keep the raw file in ``corpus_dir/sources/``.

    Refuses to overwrite an existing corpus file unless ``force`` (staff edits live there), refuses
    ids that clash with the other corpus files, and refuses to replace a raw source that other corpus
    files cite. Writes are staged: on any error nothing changes."""
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
    if target.exists() and not force:
        raise CorpusError(
            f"{target}: already exists and may hold reviewed edits; pass --force to replace it, "
            "or --name to import under another name"
        )
    sources_dir = corpus_dir / SOURCES_DIR
    source_copy = sources_dir / source.name
    relative_name = f"{SOURCES_DIR}/{source.name}"
    result = read_import_file(source, fmt, source_name=relative_name)
    if not result.entries:
        raise CorpusError(f"{source}: no question/answer pairs found")

    entries, origins = list(result.entries), [f"{source} (entry {e.id})" for e in result.entries]
    citing: list[str] = []  # other corpus files' entries whose answers cite the raw copy
    if corpus_dir.is_dir():
        for other in corpus_files(corpus_dir):
            if other.resolve() == target.resolve():
                continue
            loaded = load_corpus_file(other)
            entries += loaded.entries
            origins += loaded.origins
            citing += [
                origin
                for entry, origin in zip(loaded.entries, loaded.origins, strict=True)
                if (entry.source.file or "").split("#")[0] == relative_name
            ]
    check_entries(entries, origins)
    copy_needed = not source_copy.exists() or source_copy.resolve() != source.resolve()
    if copy_needed and citing and not _same_bytes(source, source_copy):
        raise CorpusError(
            f"{source_copy}: already kept as the raw source of other corpus entries (first: {citing[0]}); "
            f"rename {source} before importing it"
        )

    header = (
        f"Imported from {relative_name} by `qa-service import` (corpus format {CORPUS_FORMAT_VERSION}).\n"
        "Edit freely: ids are stable; see README 'Corpus format' for fields and review flags."
    )
    staged = source_copy.with_name(f".{source_copy.name}.tmp")
    try:
        if copy_needed:  # staged first, put in place only once the corpus file is written
            sources_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staged)
        write_text_atomically(target, dump_corpus(result.entries, header=header))
        if copy_needed:
            staged.replace(source_copy)
    except OSError as exc:
        raise CorpusError(f"{exc.filename or target}: cannot write: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):  # e.g. "sources" is a file: reported above
            staged.unlink(missing_ok=True)
    return ImportSummary(corpus_file=target, source_copy=source_copy, result=result)


def _same_bytes(a: Path, b: Path) -> bool:
    return b.is_file() and a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
