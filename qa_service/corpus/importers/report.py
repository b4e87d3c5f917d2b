"""The import report staff read: what was (or would be) imported, what was skipped and why, and what a
re-import changes."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_service.corpus.importers import ImportSummary

_PREVIEW = 70


def _preview(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _PREVIEW else line[: _PREVIEW - 1].rstrip() + "…"


def render_import_report(summary: ImportSummary, *, dry_run: bool) -> list[str]:
    result, report = summary.result, summary.report
    lines: list[str] = []
    verb = "would import" if dry_run else "imported"
    lines.append(f"{verb} {len(result.entries)} question/answer pairs from the page into {summary.corpus_file}")
    if not dry_run:
        lines.append(f"  raw source kept as {summary.source_copy}")
    info = result.info
    if info is not None:
        stated = [
            f"{name}: {value}"
            for name in ("title", "url", "publisher", "author", "published", "updated")
            if (value := getattr(info, name))
        ]
        stated += [f"{name}: {text!r} (relative; not stored)" for name, text in info.unresolved.items()]
        lines.append("attribution: " + ("; ".join(stated) if stated else "none stated by the page"))
    sections = Counter(entry.source.section for entry in result.entries if entry.source.section)
    if sections:
        lines.append("sections: " + ", ".join(f"{name} ({count})" for name, count in sections.items()))
    if dry_run:
        lines.append("pairs:")
        for entry in report.page_entries:
            section = f" [{entry.source.section}]" if entry.source.section else ""
            flags = f"  flags: {', '.join(entry.flags)}" if entry.flags else ""
            lines.append(f"  {entry.id}{section}")
            lines.append(f"    Q: {entry.question}")
            lines.append(f"    A: {_preview(entry.answer)}{flags}")
    if result.notes:
        lines.append("skipped or cleaned:")
        lines += [f"  {note}" for note in result.notes]
    if not report.first_import:
        lines.append(
            f"re-import: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
            f"{len(report.conflicts)} conflict(s), {len(report.kept_edits)} kept corpus edit(s), "
            f"{report.unchanged} unchanged"
        )
        lines += [f"  added: {entry_id}" for entry_id in report.added]
        lines += [f"  changed: {entry_id} ({', '.join(fields)})" for entry_id, fields in report.changed.items()]
        lines += [f"  removed: {entry_id}" for entry_id in report.removed]
        for conflict in report.conflicts:
            what = {
                "removed": "gone from the page but edited in the corpus",
                "deleted": "deleted in the corpus but changed on the page",
            }.get(conflict.fields[0], f"{', '.join(conflict.fields)} changed on the page and in the corpus")
            lines.append(f"  conflict: {conflict.id}: {what}")
        if report.conflicts:
            resolution = (
                "the page's version was taken (--force)"
                if summary.forced
                else ("the corpus version was kept; re-run with --force to take the page's")
            )
            lines.append(f"  conflicts: {resolution}")
    flagged = [entry for entry in report.entries if entry.flags]
    if flagged and not dry_run:
        lines.append(f"{len(flagged)} entries flagged for review:")
        lines += [f"  {entry.id}: {', '.join(entry.flags)}" for entry in flagged]
    if not dry_run and not summary.written:
        lines.append(f"{summary.corpus_file} is unchanged")
    return lines
