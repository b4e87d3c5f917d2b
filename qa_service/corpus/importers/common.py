"""Pieces shared by the importers: the result type, stable ids, duplicate-question marking."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_service.corpus.entries import FaqEntry
from qa_service.corpus.importers.page_info import PageInfo
from qa_service.errors import CorpusError

_MAX_SLUG = 80


@dataclass
class ImportResult:
    entries: list[FaqEntry]
    notes: list[str] = field(default_factory=list)  # what was dropped or cleaned, for the import report
    info: PageInfo | None = None  # what the page says about itself (pages only)


def slugify(text: str) -> str:
    """A readable id from a question: 'How long do spasms last?' -> 'how-long-do-spasms-last'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > _MAX_SLUG:
        slug = slug[:_MAX_SLUG].rsplit("-", 1)[0]
    return slug or "entry"


def question_key(question: str) -> str:
    """Questions that differ only in case, spacing and punctuation share a key."""
    return " ".join(re.sub(r"[^\w\s]", " ", question.casefold()).split())


def assign_ids(entries: list[FaqEntry], taken: set[str] | None = None) -> list[FaqEntry]:
    """Give entries whose id is 'pending' a slug of their question; repeats get -2, -3, ...

    The same input always gives the same ids, so re-importing a page keeps ids stable."""
    used = set(taken or ()) | {entry.id for entry in entries if entry.id != "pending"}
    result = []
    for entry in entries:
        if entry.id != "pending":
            result.append(entry)
            continue
        base = slugify(entry.question)
        candidate, counter = base, 1
        while candidate in used:
            counter += 1
            candidate = f"{base}-{counter}"
        used.add(candidate)
        result.append(entry.model_copy(update={"id": candidate}))
    return result


def mark_duplicate_questions(entries: list[FaqEntry]) -> list[FaqEntry]:
    """Entries asking the same question get the 'duplicate_question' flag and name each other."""
    groups: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        groups[question_key(entry.question)].append(entry.id)
    result = []
    for entry in entries:
        others = [other for other in groups[question_key(entry.question)] if other != entry.id]
        if not others:
            result.append(entry)
            continue
        flags = list(entry.flags)
        if "duplicate_question" not in flags:
            flags.append("duplicate_question")
        duplicates = list(dict.fromkeys([*entry.duplicates, *others]))
        result.append(entry.model_copy(update={"flags": flags, "duplicates": duplicates}))
    return result


def read_text(path: Path) -> str:
    """A UTF-8 file's text; errors name the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from None


def iter_jsonl_objects(text: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """("file:line", object) for each non-blank line; a line that is not a JSON object is an error."""
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line, object_pairs_hook=_refuse_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except _DuplicateKeyError as exc:
            raise CorpusError(f"{where}: key {exc.args[0]!r} appears twice (which one was meant?)") from None
        except RecursionError:
            raise CorpusError(f"{where}: invalid JSON: nested too deeply") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
        if _SURROGATE_ESCAPE.search(line):  # "\ud800" alone decodes to half a character, which no file can hold
            try:
                json.dumps(row, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise CorpusError(
                    f"{where}: holds an escape for half a character ({exc.object[exc.start]!r}), not text"
                ) from None
        yield where, row


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # proper pairs match too: encoding tells them apart


class _DuplicateKeyError(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise _DuplicateKeyError(key)
        row[key] = value
    return row
