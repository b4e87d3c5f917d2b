"""How well stored text is de-identified: ``qa-service deid-eval`` on the labelled sentences in
``tests/data/deid/sentences.jsonl``.

Each line is a chat sentence with its identifiers labelled (``spans``: start, end, type) and the
medical words that must survive (``medical``); ``tests/data/deid/fresh.jsonl``, written later by
another hand, has the same format and calls record numbers ``RECORD`` (read as ``ID``). A labelled
identifier counts as removed when none of its words is left where it stood, however the
replacements cover it (one placeholder or several, reaching past it or not): a name half replaced
is missed. Where it stood is found by lining the scrubbed text's pieces between placeholders up
with the sentence; when they do not line up (a scrubber that rewrites other text), an identifier
counts as removed when none of its words is left anywhere in the scrubbed text. Titles such as "Dr." and street words
such as "Street" may stay; for phone, record, device and ZIP numbers and IP addresses only the parts
with digits count (a label such as "MRN" or "ext" inside the span may stay); every word of a date
but "the" and "of" counts (a month is an identifier, "January 2025" left as "January [date]" is
missed), and every word of an age ("ninety six") and a plate ("MC 44821"). A medical word counts as
kept when it is still in the scrubbed text. A sentence with no identifier counts as changed when
its scrubbed text differs at all.

The 419-sentence set is split in two by a hash of each sentence, fixed before any tuning: the
tuning half was used to improve the finders first, then (once the fresh set existed) all of it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_service.errors import QaError

DEFAULT_SET = Path("tests/data/deid/sentences.jsonl")
FRESH_SET = Path("tests/data/deid/fresh.jsonl")
TYPE_ALIASES = {"RECORD": "ID"}  # the fresh set's name for record, account and insurance numbers
DIGIT_TYPES = frozenset({"PHONE", "ID", "DEVICE", "ZIP", "IP"})
# words an identifier's span may keep: titles and the generic parts of an address
MAY_STAY = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "miss",
        "nurse",
        "grandpa",
        "grandma",
        "street",
        "st",
        "avenue",
        "ave",
        "road",
        "rd",
        "lane",
        "ln",
        "drive",
        "court",
        "ct",
        "boulevard",
        "blvd",
        "apt",
        "apartment",
        "box",
        "po",
        "county",
    ]
)
FILLER = frozenset({"the", "of"})  # "the 3rd of March": only the day and month identify
_IGNORED = MAY_STAY | FILLER
_WORD = re.compile(r"[^\W_]+")
_PLACEHOLDER = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Sentence:
    text: str
    spans: list[tuple[int, int, str]]
    medical: list[str]

    @property
    def half(self) -> str:
        """ "tune" or "report", from a hash of the text (so adding sentences moves none)."""
        return "tune" if hashlib.sha256(self.text.encode()).digest()[0] % 2 == 0 else "report"


def load_sentences(path: Path) -> list[Sentence]:
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text = record["text"]
            spans = [
                (int(s["start"]), int(s["end"]), TYPE_ALIASES.get(str(s["type"]), str(s["type"])))
                for s in record.get("spans", [])
            ]
            medical = [str(term) for term in record.get("medical", [])]
        except (ValueError, KeyError, TypeError) as exc:
            raise QaError(f"{path}:{number}: not a labelled sentence ({exc})") from None
        for start, end, kind in spans:
            if not 0 <= start < end <= len(text):
                raise QaError(f"{path}:{number}: span {start}-{end} ({kind}) is outside the text")
        for term in medical:
            if term not in text:
                raise QaError(f"{path}:{number}: medical term {term!r} is not in the text")
        sentences.append(Sentence(text, spans, medical))
    if not sentences:
        raise QaError(f"{path}: no sentences")
    return sentences


def _identifying_matches(text: str, kind: str) -> list[re.Match[str]]:
    words = [match for match in _WORD.finditer(text) if match[0].lower() not in _IGNORED]
    numbers = [match for match in words if any(c.isdigit() for c in match[0])]
    return numbers if kind in DIGIT_TYPES and numbers else words


def identifying_words(text: str, kind: str) -> list[str]:
    """The words of a labelled identifier that must not survive."""
    return [match[0] for match in _identifying_matches(text, kind)]


def removed(identifier: str, kind: str, scrubbed: str) -> bool:
    """Whether no word of ``identifier`` is left anywhere in ``scrubbed`` (when positions are unknown)."""
    left = set(_WORD.findall(_PLACEHOLDER.sub(" ", scrubbed)))  # "[age 90+]" leaves no "90"
    return not any(word in left for word in identifying_words(identifier, kind))


def kept_characters(text: str, scrubbed: str) -> list[bool] | None:
    """For each character of ``text``, whether ``scrubbed`` still has it; None when the pieces of
    ``scrubbed`` between placeholders are not ``text``'s own, in order."""
    pieces = _PLACEHOLDER.split(scrubbed)
    match = re.fullmatch("(.+?)".join(re.escape(piece) for piece in pieces), text, re.DOTALL)
    if match is None:
        return None
    kept = [True] * len(text)
    for group in range(1, len(pieces)):
        start, end = match.span(group)
        kept[start:end] = [False] * (end - start)
    return kept


def removed_at(text: str, span: tuple[int, int, str], scrubbed: str, kept: list[bool] | None) -> bool:
    """Whether no identifying word of the labelled ``span`` of ``text`` is left where it stood."""
    start, end, kind = span
    if kept is None:
        return removed(text[start:end], kind, scrubbed)
    matches = _identifying_matches(text[start:end], kind)
    return not any(any(kept[start + match.start() : start + match.end()]) for match in matches)


@dataclass
class DeidReport:
    sentences: int = 0
    found: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    medical_kept: int = 0
    medical_total: int = 0
    clean: int = 0  # sentences with no identifier
    clean_changed: list[tuple[str, str]] = field(default_factory=list)  # sentence, scrubbed
    seconds: float = 0.0
    missed: list[tuple[str, str, str]] = field(default_factory=list)  # type, identifier, scrubbed sentence
    lost: list[tuple[str, str]] = field(default_factory=list)  # medical term, scrubbed sentence

    def recall(self, kinds: Sequence[str] | None = None) -> float:
        chosen = kinds or list(self.total)
        total = sum(self.total[kind] for kind in chosen)
        return sum(self.found[kind] for kind in chosen) / total if total else 1.0

    @property
    def medical_kept_rate(self) -> float:
        return self.medical_kept / self.medical_total if self.medical_total else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "recall": round(self.recall(), 4),
            "recall_email_phone_id": round(self.recall(["EMAIL", "PHONE", "ID"]), 4),
            "recall_by_type": {
                kind: {"found": self.found[kind], "total": self.total[kind], "recall": round(self.recall([kind]), 4)}
                for kind in sorted(self.total)
            },
            "medical_kept": self.medical_kept,
            "medical_total": self.medical_total,
            "medical_kept_rate": round(self.medical_kept_rate, 4),
            "clean_sentences": self.clean,
            "clean_sentences_changed": len(self.clean_changed),
            "ms_per_sentence": round(self.seconds * 1000 / max(1, self.sentences), 3),
        }


def evaluate(scrub: Callable[[str], str], sentences: Sequence[Sentence]) -> DeidReport:
    report = DeidReport(sentences=len(sentences))
    for sentence in sentences[:5]:  # warm up (a model's first call is slow)
        scrub(sentence.text)
    for sentence in sentences:
        started = time.perf_counter()
        scrubbed = scrub(sentence.text)
        report.seconds += time.perf_counter() - started
        if not sentence.spans:
            report.clean += 1
            if scrubbed != sentence.text:
                report.clean_changed.append((sentence.text, scrubbed))
        kept = kept_characters(sentence.text, scrubbed)
        for start, end, kind in sentence.spans:
            report.total[kind] += 1
            if removed_at(sentence.text, (start, end, kind), scrubbed, kept):
                report.found[kind] += 1
            else:
                report.missed.append((kind, sentence.text[start:end], scrubbed))
        for term in sentence.medical:
            report.medical_total += 1
            if term in scrubbed:
                report.medical_kept += 1
            else:
                report.lost.append((term, scrubbed))
    return report


def _recall_cell(kind: str, report: DeidReport) -> str:
    return f"{report.recall([kind]):.4f} ({report.found[kind]}/{report.total[kind]})"


def render(reports: dict[str, DeidReport], *, show_misses: bool = False) -> str:
    kinds = sorted({kind for report in reports.values() for kind in report.total})
    names = list(reports)
    lines = [f"{'':<28}" + "".join(f"{name:>20}" for name in names)]

    def row(label: str, cell: Callable[[DeidReport], str]) -> None:
        lines.append(f"{label:<28}" + "".join(f"{cell(reports[name]):>20}" for name in names))

    row("sentences", lambda r: str(r.sentences))
    for kind in kinds:
        row(f"recall {kind}", functools.partial(_recall_cell, kind))
    row("recall, all identifiers", lambda r: f"{r.recall():.4f} ({sum(r.found.values())}/{sum(r.total.values())})")
    row("recall e-mail+phone+ID", lambda r: f"{r.recall(['EMAIL', 'PHONE', 'ID']):.4f}")
    row("medical terms kept", lambda r: f"{r.medical_kept_rate:.4f} ({r.medical_kept}/{r.medical_total})")
    row("no identifier, changed", lambda r: f"{len(r.clean_changed)} of {r.clean}")
    row("ms per sentence", lambda r: f"{r.seconds * 1000 / max(1, r.sentences):.3f}")
    if show_misses:
        for name, report in reports.items():
            lines += ["", f"{name}: identifiers left"]
            lines += [f"  {kind:<9}{identifier!r:<32}{scrubbed}" for kind, identifier, scrubbed in report.missed]
            lines += [f"{name}: medical terms lost"]
            lines += [f"  {term!r:<32}{scrubbed}" for term, scrubbed in report.lost]
            lines += [f"{name}: sentences without identifiers changed"]
            lines += [f"  {text!r} -> {scrubbed!r}" for text, scrubbed in report.clean_changed]
    return "\n".join(lines)


def run(path: Path, *, scrub: Callable[[str], str] | None = None, halves: bool = True) -> dict[str, DeidReport]:
    """The report on all of the set and, with ``halves``, on each half."""
    if scrub is None:
        from qa_service.ops.privacy import default_deidentifier

        deidentifier = default_deidentifier()
        deidentifier.load()
        scrub = deidentifier.scrub
    sentences = load_sentences(path)
    parts = {half: [s for s in sentences if s.half == half] for half in ("tune", "report")} if halves else {}
    return {**{name: evaluate(scrub, part) for name, part in parts.items()}, "all": evaluate(scrub, sentences)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deid-eval", description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help=f"labelled sentences (default {DEFAULT_SET})")
    parser.add_argument(
        "--no-halves", dest="halves", action="store_false", help=f"report only the whole set (as for {FRESH_SET})"
    )
    parser.add_argument("--misses", action="store_true", help="also list each identifier left and medical word lost")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run_command(args: argparse.Namespace) -> int:
    reports = run(args.set, halves=args.halves)
    if args.json:
        print(json.dumps({name: report.as_dict() for name, report in reports.items()}))
    else:
        print(render(reports, show_misses=args.misses))
    return 0
