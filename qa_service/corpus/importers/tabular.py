"""Import an existing FAQ spreadsheet: CSV or JSONL rows with question, answer and source.

Columns/keys: ``question`` and ``answer`` (required), ``source`` (a site name, a URL, or in JSONL an
object with the corpus source fields), and optionally ``id``, ``alternates`` (CSV: separated by "|"),
``url``, ``author``, ``published``, ``flags`` (CSV: separated by "|"), ``notes``. Errors name the file
and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from qa_service.corpus.entries import FaqEntry, check_entries, parse_entry
from qa_service.corpus.importers.common import ImportResult, assign_ids, iter_jsonl_objects, mark_duplicate_questions
from qa_service.errors import CorpusError

REQUIRED = ("question", "answer")
OPTIONAL = ("id", "source", "alternates", "url", "author", "published", "flags", "notes")
_LIST_SEPARATOR = "|"


def source_from_value(value: Any, *, where: str) -> dict[str, Any]:
    """A source column: a URL, a site or publisher name, or (JSONL) an object of source fields."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str):
        raise CorpusError(f"{where}: source must be text or an object, got {type(value).__name__}")
    text = value.strip()
    parsed = urlparse(text)
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        return {"url": text, "publisher": parsed.netloc.removeprefix("www.")}
    return {"publisher": text}


def _row_to_raw(row: dict[str, Any], *, where: str, split_lists: bool) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": row.get("id") or "pending",
        "question": row.get("question"),
        "answer": row.get("answer") if row.get("answer") is not None else "",
    }
    source = source_from_value(row.get("source"), where=where)
    for key in ("url", "author", "published"):
        if row.get(key):
            source[key] = row[key]
    if source:
        raw["source"] = source
    for key in ("alternates", "flags"):
        value = row.get(key)
        if value in (None, ""):
            continue
        if split_lists and isinstance(value, str):
            value = [part.strip() for part in value.split(_LIST_SEPARATOR) if part.strip()]
        raw[key] = value
    if row.get("notes"):
        raw["notes"] = row["notes"]
    return raw


def _check_columns(columns: list[str], *, where: str) -> None:
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise CorpusError(f"{where}: column(s) {', '.join(repeated)} appear more than once (which one was meant?)")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise CorpusError(f"{where}: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})")
    unknown = [name for name in columns if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise CorpusError(
            f"{where}: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(REQUIRED + OPTIONAL)})"
        )


def _finish(entries: list[FaqEntry], origins: list[str]) -> ImportResult:
    entries = assign_ids(entries)
    check_entries(entries, origins)
    return ImportResult(entries=mark_duplicate_questions(entries))


def parse_csv(text: str, *, path: Path, require_answers: bool = True) -> ImportResult:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CorpusError(f"{path}:1: the file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise CorpusError(f"{path}:1: invalid CSV: {exc}") from None
    columns = [name.strip().lower() for name in header]
    _check_columns(columns, where=f"{path}:1")
    entries: list[FaqEntry] = []
    origins: list[str] = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CorpusError(f"{path}:{line}: invalid CSV: {exc}") from None
        where = f"{path}:{line}"
        line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise CorpusError(f"{where}: expected {len(columns)} cells, found {len(row)}")
        raw = _row_to_raw(dict(zip(columns, row, strict=True)), where=where, split_lists=True)
        entries.append(parse_entry(raw, origin=where, require_answer=require_answers))
        origins.append(where)
    return _finish(entries, origins)


def parse_jsonl(text: str, *, path: Path, require_answers: bool = True) -> ImportResult:
    entries: list[FaqEntry] = []
    origins: list[str] = []
    for where, row in iter_jsonl_objects(text, path):
        _check_columns(list(row), where=where)
        for key in ("question", "answer"):
            if row[key] is not None and not isinstance(row[key], str):
                raise CorpusError(f"{where}: {key} must be text, got {type(row[key]).__name__}")
        raw = _row_to_raw(row, where=where, split_lists=False)
        entries.append(parse_entry(raw, origin=where, require_answer=require_answers))
        origins.append(where)
    return _finish(entries, origins)
