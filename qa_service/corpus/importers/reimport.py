"""Re-importing an updated page into a corpus file staff may have edited since the last import.

Three versions of each entry meet: what the last import wrote (the *base*, kept beside the raw source),
what the corpus file holds now (*current*, perhaps edited by staff) and what the page gives now (*new*).
Field by field, a side that did not change from the base gives way to the side that did; when both
changed the same field differently, that is a conflict: the corpus keeps its version unless ``force``.
Ids stay stable: a new entry takes the id of the base entry asking the same question (or, if its
question was reworded, giving the same answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qa_service.corpus.entries import FaqEntry
from qa_service.corpus.importers.common import assign_ids, mark_duplicate_questions, question_key

_MERGED_FIELDS = ("question", "alternates", "answer", "source", "flags", "notes")


@dataclass
class Conflict:
    id: str
    question: str
    fields: list[str]  # fields changed both on the page and in the corpus; or ["removed"] / ["deleted"]


@dataclass
class MergeReport:
    """What a re-import changes; ``entries`` is what the corpus file will hold."""

    entries: list[FaqEntry]
    page_entries: list[FaqEntry]  # the page's own version, with the ids it keeps: the next re-import's base
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # id -> fields taken from the page
    removed: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    kept_edits: list[str] = field(default_factory=list)  # ids whose corpus edits were kept
    unchanged: int = 0
    first_import: bool = False


def _value(entry: FaqEntry, name: str) -> Any:
    value = getattr(entry, name)
    return value.model_dump() if hasattr(value, "model_dump") else value


def _match(base: Sequence[FaqEntry], new: Sequence[FaqEntry]) -> dict[int, FaqEntry]:
    """new entry position -> the base entry it continues (same question; else the same answer)."""
    by_question: dict[str, list[FaqEntry]] = defaultdict(list)
    for entry in base:
        by_question[question_key(entry.question)].append(entry)
    matched: dict[int, FaqEntry] = {}
    used: set[str] = set()
    for position, entry in enumerate(new):
        candidates = by_question.get(question_key(entry.question), [])
        if candidates:
            matched[position] = candidates.pop(0)
            used.add(matched[position].id)
    by_answer: dict[str, list[FaqEntry]] = defaultdict(list)
    for entry in base:
        if entry.id not in used:
            by_answer[" ".join(entry.answer.split())].append(entry)
    for position, entry in enumerate(new):
        if position not in matched and (candidates := by_answer.get(" ".join(entry.answer.split()), [])):
            matched[position] = candidates.pop(0)
            used.add(matched[position].id)
    return matched


def merge_import(
    current: Sequence[FaqEntry],
    base: Sequence[FaqEntry] | None,
    new: Sequence[FaqEntry],
    *,
    force: bool,
    taken_ids: set[str],
) -> MergeReport:
    """Merge a fresh parse (``new``) into the corpus file's ``current`` entries.

    ``base`` is what the last import wrote (None when unknown: then any difference between the page
    and the corpus is a conflict). ``taken_ids`` are ids a new entry must not take."""
    unknown_base = base is None
    base = list(current) if base is None else list(base)
    matched = _match(base, new)
    # a question new to the page keeps its id (a slug, or the id a spreadsheet gives) unless that id is
    # held by another entry of this file; then it gets a fresh one
    known_ids = taken_ids | {entry.id for entry in current} | {entry.id for entry in base}
    pending = [
        entry.model_copy(update={"id": matched[position].id})
        if position in matched
        else entry.model_copy(update={"id": "pending"})
        if entry.id in known_ids
        else entry
        for position, entry in enumerate(new)
    ]
    page = assign_ids([entry.model_copy(update={"duplicates": []}) for entry in pending], taken=known_ids)
    report = MergeReport(entries=[], page_entries=mark_duplicate_questions(page), first_import=not current)
    current_by_id = {entry.id: entry for entry in current}
    base_by_id = {entry.id: entry for entry in base}
    result: list[FaqEntry] = []
    for position, fresh in enumerate(page):
        previous = matched.get(position)
        corpus = current_by_id.get(fresh.id)
        if previous is None or corpus is None:
            if previous is None:  # a question the page did not have before
                report.added.append(fresh.id)
                result.append(fresh)
            elif any(_value(fresh, name) != _value(previous, name) for name in _MERGED_FIELDS):
                # deleted from the corpus by staff, and changed on the page since
                if force:
                    report.changed[fresh.id] = ["restored"]
                    result.append(fresh)
                else:
                    report.conflicts.append(Conflict(fresh.id, fresh.question, ["deleted"]))
            continue
        update: dict[str, Any] = {}
        taken, clashes, edited = [], [], []
        for name in _MERGED_FIELDS:
            page_value, base_value, corpus_value = (_value(e, name) for e in (fresh, previous, corpus))
            if page_value == corpus_value:
                continue
            if unknown_base or (corpus_value != base_value and page_value != base_value):
                clashes.append(name)
                if force:
                    update[name] = getattr(fresh, name)
            elif page_value != base_value:  # only the page changed it
                update[name] = getattr(fresh, name)
                taken.append(name)
            else:  # only the corpus changed it
                edited.append(name)
        if clashes:
            report.conflicts.append(Conflict(corpus.id, corpus.question, clashes))
        if taken or (clashes and force):
            report.changed[corpus.id] = taken + (clashes if force else [])
        elif edited:
            report.kept_edits.append(corpus.id)
        elif not clashes:
            report.unchanged += 1
        result.append(corpus.model_copy(update={**update, "duplicates": []}))

    on_page = {entry.id for entry in page}
    for corpus in current:
        if corpus.id in on_page:
            continue
        previous = base_by_id.get(corpus.id) if not unknown_base else None
        if previous is None and not unknown_base:  # added in the corpus by staff: theirs to keep
            result.append(corpus.model_copy(update={"duplicates": []}))
            continue
        was_edited = previous is None or any(_value(corpus, n) != _value(previous, n) for n in _MERGED_FIELDS)
        if was_edited and not force:  # gone from the page, but edited in the corpus (or no base to tell)
            report.conflicts.append(Conflict(corpus.id, corpus.question, ["removed"]))
            result.append(corpus.model_copy(update={"duplicates": []}))
        else:
            report.removed.append(corpus.id)
    report.entries = mark_duplicate_questions(result)
    return report
