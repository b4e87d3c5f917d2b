"""The curated corpus: entry schema, loading with validation, and writing.

A corpus is a folder of YAML files (``corpus/*.yaml``), each a mapping ``{version: 1, entries: [...]}``.
Errors name the file, the line and the entry, so clinic staff can fix them by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import reprlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa_service.corpus.yamlfile import read_yaml, sequence_lines
from qa_service.errors import CorpusError

CORPUS_FORMAT_VERSION = 1
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,159}$", re.IGNORECASE)

Flag = Literal[
    "truncated",  # the answer (or an item of its list) was cut off with "..." by the source page
    "incomplete",  # the answer announces more than it contains (ends with ":" or a dangling list number)
    "fragment",  # the answer starts mid-thought (lower case, or a list number from a longer text)
    "advert",  # promotional content, not medical information
    "duplicate_question",  # another entry asks the same question with a different answer
    "needs_question",  # the question is a section heading, not something a patient would ask
    "relative_date",  # the source dates the answer only relatively ("2 years ago"): set the date by hand
    "needs_review",  # anything else a reviewer should look at
]
FLAGS: tuple[str, ...] = Flag.__args__  # type: ignore[attr-defined]


class Source(BaseModel):
    """Where an answer comes from, as far as the source says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = Field(None, description="Title of the page or document the answer was taken from.")
    publisher: str | None = Field(None, description="Site or organisation that published it.")
    url: str | None = Field(None, description="Address of the page, when known.")
    author: str | None = Field(None, description="Author named by the source.")
    published: str | None = Field(None, description="Publication date as the source states it.")
    updated: str | None = Field(None, description="Last-update date as the source states it.")
    section: str | None = Field(None, description="Section of the page the answer sits in.")
    quotes: list[str] = Field(default_factory=list, description="Experts or organisations the answer quotes.")
    file: str | None = Field(None, description="Raw source kept in corpus/sources, with the line: 'x.txt#L12'.")


class FaqEntry(BaseModel):
    """One curated question and its answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str
    alternates: list[str] = Field(default_factory=list, description="Other phrasings of the question.")
    answer: str
    source: Source = Field(default_factory=Source)
    flags: list[Flag] = Field(default_factory=list)
    duplicates: list[str] = Field(
        default_factory=list, description="Ids of entries asking the same question with another answer."
    )
    notes: str | None = Field(None, description="Reviewer notes; never shown to patients.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(
                f"id {value!r} must be 1-160 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("question is empty")
        return value

    @field_validator("answer")
    @classmethod
    def _strip_answer(cls, value: str) -> str:
        return value.strip()

    @field_validator("alternates")
    @classmethod
    def _alternates_not_blank(cls, value: list[str]) -> list[str]:
        stripped = [text.strip() for text in value]
        if any(not text for text in stripped):
            raise ValueError("alternates contains an empty phrasing")
        return stripped


@dataclass(frozen=True)
class Corpus:
    """Validated entries and where each came from (for error messages)."""

    entries: tuple[FaqEntry, ...]
    origins: tuple[str, ...]  # "file:line" per entry

    def content_hash(self) -> str:
        return hash_entries(self.entries)


def hash_entries(entries: Iterable[FaqEntry]) -> str:
    """A stable hash of entry content: equal corpora give equal hashes whatever the file layout."""
    return content_hashes(entries)[0]


def content_hashes(entries: Iterable[FaqEntry]) -> tuple[str, list[str]]:
    """``hash_entries`` of all the entries, and each entry's own (16 hex digits of ``hash_entries([e])``),
    from one serialisation of each entry."""
    digest = hashlib.sha256()
    each = []
    for entry in entries:
        line = entry.model_dump_json().encode() + b"\n"  # fields in their declared order: stable
        digest.update(line)
        each.append(hashlib.sha256(line).hexdigest()[:16])
    return "sha256:" + digest.hexdigest(), each


def _short_repr(value: Any) -> str:
    """A value as an error message may quote it: a few items and levels, however large it is."""
    shortened = reprlib.Repr()
    shortened.maxlevel, shortened.maxlist, shortened.maxdict, shortened.maxstring = 2, 4, 4, 80
    return shortened.repr(value)


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(str(item) for item in err["loc"]) or "entry"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown field (allowed: {_allowed_fields(err['loc'])})"
        elif err["type"] == "literal_error" and "flags" in err["loc"]:
            message = f"unknown flag {_short_repr(err.get('input'))} (allowed: {', '.join(FLAGS)})"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def _allowed_fields(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Source if loc and loc[0] == "source" else FaqEntry
    return ", ".join(model.model_fields)


def parse_entry(raw: Any, *, origin: str, require_answer: bool = True) -> FaqEntry:
    """Validate one raw mapping into an entry; errors name ``origin`` (``file:line``) and the entry id."""
    if not isinstance(raw, dict):
        raise CorpusError(f"{origin}: an entry must be a mapping of fields, got {type(raw).__name__}")
    label = f"entry {raw.get('id')!r}" if isinstance(raw.get("id"), str) else "entry"
    try:
        entry = FaqEntry.model_validate(raw)
    except ValidationError as exc:
        raise CorpusError(f"{origin}: {label}: {_describe_validation_error(exc)}") from None
    if require_answer and not entry.answer:
        raise CorpusError(f"{origin}: {label}: answer is empty")
    return entry


def check_entries(entries: Sequence[FaqEntry], origins: Sequence[str]) -> None:
    """Cross-entry checks: unique ids, and duplicates that point at existing entries."""
    first_seen: dict[str, str] = {}
    for entry, origin in zip(entries, origins, strict=True):
        if entry.id in first_seen:
            raise CorpusError(f"{origin}: entry {entry.id!r}: duplicate id (first defined at {first_seen[entry.id]})")
        first_seen[entry.id] = origin
    for entry, origin in zip(entries, origins, strict=True):
        for other in entry.duplicates:
            if other not in first_seen:
                raise CorpusError(f"{origin}: entry {entry.id!r}: duplicates names unknown id {other!r}")
            if other == entry.id:
                raise CorpusError(f"{origin}: entry {entry.id!r}: duplicates names the entry itself")


def load_corpus_file(path: Path, *, require_answers: bool = True) -> Corpus:
    """Load and validate one corpus YAML file."""
    data, root_node = read_yaml(path, CorpusError)
    if data is None:
        return Corpus((), ())
    if not isinstance(data, dict) or "entries" not in data:
        raise CorpusError(f"{path}:1: a corpus file is a mapping with 'version' and 'entries' keys")
    unknown = set(data) - {"version", "entries"}
    if unknown:
        raise CorpusError(f"{path}:1: unknown top-level key(s) {sorted(unknown)} (allowed: version, entries)")
    if data.get("version", CORPUS_FORMAT_VERSION) != CORPUS_FORMAT_VERSION:
        raise CorpusError(
            f"{path}:1: unsupported corpus version {data['version']!r} (expected {CORPUS_FORMAT_VERSION})"
        )
    raw_entries = data["entries"] or []
    if not isinstance(raw_entries, list):
        raise CorpusError(f"{path}:1: 'entries' must be a list")
    entry_lines = sequence_lines(root_node, "entries")
    entries: list[FaqEntry] = []
    origins: list[str] = []
    for position, raw in enumerate(raw_entries):
        line = entry_lines[position] if position < len(entry_lines) else 1
        origin = f"{path}:{line}"
        entries.append(parse_entry(raw, origin=origin, require_answer=require_answers))
        origins.append(origin)
    check_entries(entries, origins)
    return Corpus(tuple(entries), tuple(origins))


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The corpus files of a folder, in a stable order (sources/ and hidden files are not corpus files)."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus folder does not exist")
    return sorted(
        path
        for path in corpus_dir.iterdir()
        if path.suffix in {".yaml", ".yml"} and path.is_file() and not path.name.startswith(".")
    )


def load_corpus(corpus_dir: Path) -> Corpus:
    """Load every corpus file of a folder; ids must be unique across files."""
    entries: list[FaqEntry] = []
    origins: list[str] = []
    for path in corpus_files(corpus_dir):
        corpus = load_corpus_file(path)
        entries.extend(corpus.entries)
        origins.extend(corpus.origins)
    if not entries:
        raise CorpusError(f"{corpus_dir}: no corpus entries found (expected *.yaml files with entries)")
    check_entries(entries, origins)
    return Corpus(tuple(entries), tuple(origins))


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks so answers stay readable and editable."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockDumper.add_representer(str, _str_representer)


def entry_to_yaml_dict(entry: FaqEntry) -> dict[str, Any]:
    """The entry as written to YAML: defaults left out so files stay short."""
    data = entry.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("alternates", [])
    data.setdefault("flags", [])
    order = list(FaqEntry.model_fields)
    return {key: data[key] for key in order if key in data}


def dump_corpus(entries: Sequence[FaqEntry], *, header: str = "") -> str:
    body = yaml.dump(
        {"version": CORPUS_FORMAT_VERSION, "entries": [entry_to_yaml_dict(e) for e in entries]},
        Dumper=_BlockDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + body


def write_text_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
