"""How well stored text is de-identified: ``qa-service deid-eval`` on the labelled sentences in
``tests/data/deid/sentences.jsonl``.

Each line is a chat sentence with its identifiers labelled (``spans``: start, end, type) and the
medical words that must survive (``medical``). A labelled identifier counts as removed when none
of its words is left in the scrubbed text (titles such as "Dr." and street words such as "Street"
may stay; for numbers and codes, only the parts with digits count). A medical word counts as kept
when it is still in the scrubbed text. The set is split in two by a hash of each sentence, fixed
before any tuning: the tuning half was used to improve the finders, the reporting half was not.
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
DIGIT_TYPES = frozenset({"PHONE", "ID", "VEHICLE", "DEVICE", "ZIP", "IP", "AGE", "DATE"})
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
            spans = [(int(s["start"]), int(s["end"]), str(s["type"])) for s in record.get("spans", [])]
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


def identifying_words(text: str, kind: str) -> list[str]:
    """The words of a labelled identifier that must not survive."""
    words = [word for word in _WORD.findall(text) if word.lower() not in MAY_STAY]
    if kind in DIGIT_TYPES:
        words = [word for word in words if any(c.isdigit() for c in word)]
    return words


def removed(identifier: str, kind: str, scrubbed: str) -> bool:
    left = set(_WORD.findall(_PLACEHOLDER.sub(" ", scrubbed)))  # "[age 90+]" leaves no "90"
    return not any(word in left for word in identifying_words(identifier, kind))


@dataclass
class DeidReport:
    sentences: int = 0
    found: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    medical_kept: int = 0
    medical_total: int = 0
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
        for start, end, kind in sentence.spans:
            report.total[kind] += 1
            if removed(sentence.text[start:end], kind, scrubbed):
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
    row("ms per sentence", lambda r: f"{r.seconds * 1000 / max(1, r.sentences):.3f}")
    if show_misses:
        for name, report in reports.items():
            lines += ["", f"{name}: identifiers left"]
            lines += [f"  {kind:<9}{identifier!r:<32}{scrubbed}" for kind, identifier, scrubbed in report.missed]
            lines += [f"{name}: medical terms lost"]
            lines += [f"  {term!r:<32}{scrubbed}" for term, scrubbed in report.lost]
    return "\n".join(lines)


def run(path: Path, *, scrub: Callable[[str], str] | None = None) -> dict[str, DeidReport]:
    """The report on each half of the set and on all of it."""
    if scrub is None:
        from qa_service.ops.privacy import default_deidentifier

        deidentifier = default_deidentifier()
        deidentifier.load()
        scrub = deidentifier.scrub
    sentences = load_sentences(path)
    halves = {half: [s for s in sentences if s.half == half] for half in ("tune", "report")}
    return {**{name: evaluate(scrub, part) for name, part in halves.items()}, "all": evaluate(scrub, sentences)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deid-eval", description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help=f"labelled sentences (default {DEFAULT_SET})")
    parser.add_argument("--misses", action="store_true", help="also list each identifier left and medical word lost")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run_command(args: argparse.Namespace) -> int:
    reports = run(args.set)
    if args.json:
        print(json.dumps({name: report.as_dict() for name, report in reports.items()}))
    else:
        print(render(reports, show_misses=args.misses))
    return 0
