"""Red-flag escalation: symptoms that need a clinician now, checked before any FAQ lookup.

Rules live in a YAML file clinic staff can read and edit (``data/red_flags.yaml``, see its header).
A rule fires when one of its ``match`` conditions holds:

- ``any: [terms]`` -- one of the terms occurs;
- ``all: [[terms], [terms], ...]`` -- a term of every group occurs, anywhere and in any order.

A term is a word or a phrase, compared after folding case, accents and apostrophes ("can't" ->
"cant") and a light plural strip ("legs" -> "leg"); words of 5 letters or more also match with one
typo ("bladdr", "numbnes"). A term preceded closely by a negation ("no fever", "I don't have any
numbness") in the same clause does not count, unless the rule says ``negation: false``. Each rule
carries ``examples`` that must fire it and may carry ``counterexamples`` that must not: the file is
checked against them every time it is loaded, so an edit that breaks a rule is refused with the
file and line.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa_service.corpus.yamlfile import read_yaml, sequence_lines
from qa_service.errors import RulesError
from qa_service.index.keywords import one_edit, stem
from qa_service.settings import Settings

RULES_FORMAT_VERSION = 1
BUNDLED_RULES = Path(__file__).resolve().parents[1] / "data" / "red_flags.yaml"
MIN_TYPO_LENGTH = 5
# English words never taken for a typo of a rule word: 'cooking' is not 'choking', 'would' is not
# 'could', 'cancel' is not 'cancer'. The whole-word entries of 4+ letters of the uncased BERT WordPiece
# vocabulary (the default model's vocab.txt): frequent words, while typos such as 'chst' or 'bladdr'
# are not in it. Made by scripts/make_common_words.py.
COMMON_WORDS_FILE = Path(__file__).resolve().parents[1] / "data" / "common_words.txt"
CORRECTION_CACHE = 50_000  # remembered typo corrections (bounded: questions are untrusted input)
Message = Literal["emergency", "crisis", "diagnosis", "dose"]
URGENT_MESSAGES = ("emergency", "crisis")  # `rules`: the reply is urgent
NOTE_MESSAGES = ("diagnosis", "dose")  # `notes`: the reply is normal, with a note to ask a clinician

_CLAUSE_BREAK = re.compile(r"[.;:!?\n]+|,|\b(?:but|however|although|though|except)\b")
_WORD = re.compile(r"[a-z0-9]+")
_ARTICLES = frozenset({"a", "an", "any", "the"})


def words(text: str) -> list[str]:
    """Folded, plural-stripped words: the form both rules and questions are compared in."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    ascii_text = re.sub(r"['\u2019`]", "", ascii_text)
    return [stem(word) for word in _WORD.findall(ascii_text)]


def clauses(text: str) -> list[list[str]]:
    """The question split where a negation stops applying (punctuation, 'but', ...), as words."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [found for part in _CLAUSE_BREAK.split(ascii_text) if (found := words(part))]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: list[str] | None = Field(None, description="Fires when one of these terms occurs.")
    all: list[list[str]] | None = Field(None, description="Fires when a term of every group occurs.")

    def groups(self) -> list[list[str]]:
        if (self.any is None) == (self.all is None):
            raise ValueError("a condition has exactly one of 'any' (a list of terms) or 'all' (a list of lists)")
        groups = [self.any] if self.any is not None else list(self.all or [])
        if not groups or any(not group for group in groups):
            raise ValueError("a condition needs at least one term in every group")
        for term in (t for group in groups for t in group):
            if not isinstance(term, str) or not words(term):
                raise ValueError(f"term {term!r} has no words")
        return groups


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = Field(..., min_length=1)
    message: Message
    match: list[_Condition] = Field(..., min_length=1)
    ignore: list[str] = Field(default_factory=list, description="Phrases whose words never count for this rule.")
    negation: bool = Field(True, description="false: negation cues do not cancel this rule's terms.")
    examples: list[str] = Field(..., min_length=1)
    counterexamples: list[str] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _valid_conditions(cls, value: list[_Condition]) -> list[_Condition]:
        for condition in value:
            condition.groups()
        return value


class _NegationModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cues: list[str] = Field(..., min_length=1)
    not_negations: list[str] = Field(default_factory=list)
    window: int = Field(3, ge=1, le=10)


Phrase = tuple[str, ...]


@dataclass(frozen=True)
class RedFlag:
    """A fired rule: what to tell the patient and why (for logs, the widget and the review)."""

    rule: str
    description: str
    message: Message


@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    message: Message
    conditions: tuple[tuple[tuple[Phrase, ...], ...], ...]
    ignore: tuple[Phrase, ...]
    negation: bool = True
    phrases_with: dict[str, tuple[Phrase, ...]] = field(default_factory=dict)  # word -> multi-word phrases
    # each condition's groups as sets, to tell cheaply whether a question holds some phrase of every group
    group_sets: tuple[tuple[frozenset[Phrase], ...], ...] = field(init=False)
    vocabulary: frozenset[Phrase] = field(init=False)  # every phrase of every condition

    def __post_init__(self) -> None:
        sets = tuple(tuple(frozenset(group) for group in condition) for condition in self.conditions)
        object.__setattr__(self, "group_sets", sets)
        object.__setattr__(self, "vocabulary", frozenset().union(*(group for condition in sets for group in condition)))
        found: dict[str, set[Phrase]] = {}
        for condition in self.conditions:
            for group in condition:
                for phrase in group:
                    if len(phrase) > 1:
                        for word in phrase:
                            found.setdefault(word, set()).add(phrase)
        self.phrases_with.update({word: tuple(sorted(phrases)) for word, phrases in found.items()})


def _phrase(term: str) -> Phrase:
    return tuple(words(term))


class RedFlagRules:
    """A validated rules file, ready to check questions."""

    def __init__(
        self, rules: Sequence[_Rule], negation: _NegationModel, source: str, notes: Sequence[_Rule] = ()
    ) -> None:
        self.rules = tuple(rules)
        self.notes = tuple(notes)
        self.source = source
        self._cues = tuple(_phrase(cue) for cue in negation.cues)
        self._not_negations = tuple(_phrase(phrase) for phrase in negation.not_negations)
        self._window = negation.window
        self._known = {
            word
            for rule in (*self.rules, *self.notes)
            for condition in rule.conditions
            for group in condition
            for phrase in (*group, *rule.ignore)
            for word in phrase
        } | {word for phrase in (*self._cues, *self._not_negations) for word in phrase}
        self._vocabulary = {word for word in self._known if len(word) >= MIN_TYPO_LENGTH and not word.isdigit()}
        self._by_deletion: dict[str, list[str]] = {}
        for term in sorted(self._vocabulary):
            for variant in _deletions(term):
                self._by_deletion.setdefault(variant, []).append(term)
        self._corrections: dict[str, str] = {}
        rule_phrases = {phrase for rule in (*self.rules, *self.notes) for phrase in (*rule.vocabulary, *rule.ignore)}
        self._longest = max(len(phrase) for phrase in rule_phrases)
        # the phrases a question is searched for, and their beginnings (to stop extending a word run early)
        self._phrases = rule_phrases | {p for p in (*self._cues, *self._not_negations) if len(p) <= self._longest}
        self._beginnings = {phrase[:size] for phrase in self._phrases for size in range(1, len(phrase) + 1)}

    @classmethod
    def load(cls, path: Path) -> RedFlagRules:
        """Load, validate and self-test a rules file; any problem raises RulesError naming file:line."""
        data, root = read_yaml(path, RulesError)
        if not isinstance(data, dict) or "rules" not in data:
            raise RulesError(f"{path}:1: a rules file is a mapping with 'version', 'negation' and 'rules' keys")
        unknown = set(data) - {"version", "negation", "rules", "notes"}
        if unknown:
            allowed = "version, negation, rules, notes"
            raise RulesError(f"{path}:1: unknown top-level key(s) {sorted(unknown)} (allowed: {allowed})")
        if data.get("version", RULES_FORMAT_VERSION) != RULES_FORMAT_VERSION:
            raise RulesError(f"{path}:1: unsupported rules version {data['version']!r} (expected 1)")
        try:
            negation = _NegationModel.model_validate(data.get("negation") or {"cues": ["no", "not"]})
        except ValidationError as exc:
            raise RulesError(f"{path}:1: negation: {_describe(exc)}") from None
        seen: dict[str, str] = {}
        red_flags = _parse_section(path, root, data, "rules", URGENT_MESSAGES, seen, required=True)
        notes = _parse_section(path, root, data, "notes", NOTE_MESSAGES, seen, required=False)
        rules = cls([_compile(m) for m, _ in red_flags], negation, str(path), [_compile(m) for m, _ in notes])
        rules._self_test([*red_flags, *notes])
        return rules

    def _self_test(self, parsed: Sequence[tuple[_RuleModel, str]]) -> None:
        for model, where in parsed:
            rule = next(r for r in (*self.rules, *self.notes) if r.id == model.id)
            for example in model.examples:
                if not self._fires(rule, example):
                    raise RulesError(f"{where}: rule {model.id!r} does not fire on its example {example!r}")
            for example in model.counterexamples:
                if self._fires(rule, example):
                    raise RulesError(f"{where}: rule {model.id!r} fires on its counterexample {example!r}")

    def assess(self, question: str) -> tuple[RedFlag | None, RedFlag | None]:
        """(the first red-flag rule that fires, else None; the first note rule, when no red flag fired),
        preparing the question once."""
        text = self._prepare(question)
        flag = self._first(self.rules, text)
        return flag, None if flag is not None else self._first(self.notes, text)

    def check(self, question: str) -> RedFlag | None:
        """The first rule (in file order) that fires on the question, or None."""
        return self._first(self.rules, self._prepare(question))

    def note_for(self, question: str) -> RedFlag | None:
        """The first ``notes`` rule that fires: a question about one's own diagnosis or dose."""
        return self._first(self.notes, self._prepare(question))

    def _first(self, rules: Sequence[_Rule], text: Sequence[_Clause]) -> RedFlag | None:
        present = _phrases_in(text)
        return next((RedFlag(r.id, r.description, r.message) for r in rules if self._fires_on(r, text, present)), None)

    def _fires(self, rule: _Rule, question: str) -> bool:
        text = self._prepare(question)
        return self._fires_on(rule, text, _phrases_in(text))

    def _prepare(self, question: str) -> list[_Clause]:
        """The question's clauses, typos corrected, with where each phrase of the rules and the negation
        settings starts."""
        prepared = []
        for clause in clauses(question):
            words_ = [self._correct(word) for word in clause]
            starts: dict[Phrase, list[int]] = {}
            for begin in range(len(words_)):
                for end in range(begin + 1, min(begin + self._longest, len(words_)) + 1):
                    phrase = tuple(words_[begin:end])
                    if phrase not in self._beginnings:
                        break
                    if phrase in self._phrases:
                        starts.setdefault(phrase, []).append(begin)
            not_negation = {
                position
                for phrase in self._not_negations
                for begin in starts.get(phrase, ())
                for position in range(begin, begin + len(phrase))
            }
            prepared.append(_Clause(words_, starts, not_negation))
        return prepared

    def _fires_on(self, rule: _Rule, text: Sequence[_Clause], present: frozenset[Phrase]) -> bool:
        if rule.vocabulary.isdisjoint(present) or not any(
            all(not group.isdisjoint(present) for group in condition) for condition in rule.group_sets
        ):
            return False  # some term of every condition is missing: nothing to weigh (most questions, most rules)
        ignored = [
            {p for phrase in rule.ignore for b in clause.starts.get(phrase, ()) for p in range(b, b + len(phrase))}
            for clause in text
        ]
        return any(
            all(self._present(rule, group, text, ignored) for group in condition) for condition in rule.conditions
        )

    def _present(
        self, rule: _Rule, group: Sequence[Phrase], text: Sequence[_Clause], ignored: Sequence[set[int]]
    ) -> bool:
        for clause, skip in zip(text, ignored, strict=True):
            for phrase in group:
                for start in clause.starts.get(phrase, ()):
                    if skip and not skip.isdisjoint(range(start, start + len(phrase))):
                        continue
                    if not (rule.negation and self._negated(rule, clause, start)):
                        return True
        return False

    def _correct(self, word: str) -> str:
        """The rule word meant by a one-typo word: 'bladdr' -> 'bladder', 'chst' -> 'chest'.

        Words the rules use are never changed. Also tries the word with the 's' the plural strip took
        ('numbnes' -> 'numbne' + 's'). A 4-letter word is only corrected when it has no vowel, i.e.
        cannot be a real word ('chst'): 'want' must not become 'wasnt'. Common English words are
        never changed (COMMON_WORDS_FILE): 'cooking oils' must not become 'choking'."""
        if word in self._known or word.isdigit() or len(word) < MIN_TYPO_LENGTH - 1 or word in common_words():
            return word
        if len(word) < MIN_TYPO_LENGTH and set(word) & set("aeiouy"):
            return word
        corrected = self._corrections.get(word)
        if corrected is None:
            found: set[str] = set()
            for form in (word, word + "s"):
                for variant in _deletions(form):
                    found.update(term for term in self._by_deletion.get(variant, ()) if one_edit(form, term))
            corrected = min(found) if len(found) == 1 else word
            if len(self._corrections) < CORRECTION_CACHE:
                self._corrections[word] = corrected
        return corrected

    def _inside_terms(self, rule: _Rule, clause: _Clause, position: int) -> bool:
        """Whether ``position`` lies inside one of the rule's own phrases: the 'no' of 'no feeling'."""
        return any(
            begin <= position < begin + len(phrase)
            for phrase in rule.phrases_with.get(clause.words[position], ())
            for begin in clause.starts.get(phrase, ())
        )

    def _negated(self, rule: _Rule, clause: _Clause, start: int) -> bool:
        """Whether a negation cue ends at most ``window`` words before the term starting at ``start``,
        directly or through a list ("no fever or chills").

        A cue that is part of a "not a negation" phrase ("no longer", "not sure") or of one of the
        rule's own phrases ("no feeling") does not count."""
        for cue in self._cues:
            for begin in clause.starts.get(cue, ()):
                end = begin + len(cue)
                if end > start or start - end > self._window or begin in clause.not_negation:
                    continue
                if not self._inside_terms(rule, clause, begin):
                    return True
        # "no fever or chills": a negation carries over a list joined by "or" / "nor"
        before = start - 1
        while before >= 0 and clause.words[before] in _ARTICLES:
            before -= 1
        return before >= 1 and clause.words[before] in ("or", "nor") and self._negated(rule, clause, before - 1)


@dataclass(frozen=True)
class _Clause:
    words: list[str]
    starts: dict[Phrase, list[int]]  # phrase -> positions where it starts
    not_negation: set[int]  # positions inside "no longer", "never had", ...


def _phrases_in(text: Sequence[_Clause]) -> frozenset[Phrase]:
    """Every phrase (of up to the rules' longest) occurring anywhere in the text, before ignores and negation."""
    return frozenset().union(*(clause.starts for clause in text))


@functools.cache
def common_words() -> frozenset[str]:
    """The words of COMMON_WORDS_FILE (one per line)."""
    return frozenset(COMMON_WORDS_FILE.read_text(encoding="utf-8").split())


def common_words_from_vocab(vocab: Path) -> list[str]:
    """Whole words of 4+ letters (a-z) of a WordPiece vocabulary file, sorted: COMMON_WORDS_FILE's
    contents, made from the default model's vocab.txt."""
    words = {line.strip() for line in vocab.read_text(encoding="utf-8").splitlines()}
    return sorted(word for word in words if len(word) >= MIN_TYPO_LENGTH - 1 and word.isascii() and word.isalpha())


def _deletions(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _parse_section(
    path: Path,
    root: Any,
    data: dict[str, Any],
    key: str,
    messages: tuple[str, ...],
    seen: dict[str, str],
    *,
    required: bool,
) -> list[tuple[_RuleModel, str]]:
    raw_rules = data.get(key)
    if raw_rules is None and not required:
        return []
    if not isinstance(raw_rules, list) or (required and not raw_rules):
        raise RulesError(f"{path}:1: '{key}' must be a non-empty list")
    lines = sequence_lines(root, key)
    parsed: list[tuple[_RuleModel, str]] = []
    for position, raw in enumerate(raw_rules):
        where = f"{path}:{lines[position] if position < len(lines) else 1}"
        name = raw.get("id") if isinstance(raw, dict) else None
        try:
            model = _RuleModel.model_validate({"message": messages[0], **raw} if isinstance(raw, dict) else raw)
        except ValidationError as exc:
            raise RulesError(f"{where}: rule {name!r}: {_describe(exc)}") from None
        if model.message not in messages:
            raise RulesError(f"{where}: rule {name!r}: message: in '{key}' use one of {', '.join(messages)}")
        if model.id in seen:
            raise RulesError(f"{where}: rule id {model.id!r} is used twice (first at {seen[model.id]})")
        seen[model.id] = where
        parsed.append((model, where))
    return parsed


def _compile(model: _RuleModel) -> _Rule:
    return _Rule(
        model.id,
        model.description,
        model.message,
        tuple(tuple(tuple(_phrase(t) for t in group) for group in c.groups()) for c in model.match),
        tuple(_phrase(phrase) for phrase in model.ignore),
        model.negation,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(str(item) for item in err["loc"]) or "rule"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
            message = "not text: put the word in quotes (YAML reads bare no/yes/on/off as false/true)"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def red_flags_from_settings(settings: Settings) -> RedFlagRules:
    """The configured rules, validated and self-tested; RulesError if they are not usable."""
    return RedFlagRules.load(settings.red_flags_file or BUNDLED_RULES)
