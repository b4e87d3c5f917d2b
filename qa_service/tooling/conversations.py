"""Measures follow-up questions: the conversation set in ``tests/data/conversations``.

Each conversation has earlier turns (what the patient asked, the entry that answered it) and a last
message with the entry that should answer it (or "urgent"). Kinds:

- ``needs_context``: the last message cannot be answered alone ("how long does it last?");
- ``standalone``: it names its own topic, and context must not change its answer;
- ``emergency``: an emergency told over several messages.

The set is split by a hash of each conversation into a tuning half and a reporting half.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_service.answering.answerer import Answerer
from qa_service.answering.context import Turn
from qa_service.answering.decision import Decision


@dataclass(frozen=True)
class Conversation:
    corpus: str
    kind: str
    turns: tuple[Turn, ...]
    last: str
    expected: frozenset[str]  # right entry ids, or {"urgent"}
    benign: bool = False

    @property
    def half(self) -> str:
        """ "tune" or "report", fixed by the conversation's words."""
        text = "\n".join([*(turn.question for turn in self.turns), self.last])
        return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "report"


def load_conversations(path: Path) -> list[Conversation]:
    conversations = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row: dict[str, Any] = json.loads(line)
            turns = tuple(Turn(turn["question"], turn.get("answer_id")) for turn in row["turns"])
            expected = frozenset([row["expected"], *row.get("also", [])])
            conversations.append(
                Conversation(row["corpus"], row["kind"], turns, row["last"], expected, bool(row.get("benign_alarm")))
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}:{number}: not a conversation ({exc})") from None
    return conversations


def _top(decision: Decision) -> str | None:
    """The entry the reply puts first: its answer, or the first choice it offers."""
    if decision.status == "urgent":
        return "urgent"
    if decision.answer is not None:
        return decision.answer.entry.id
    return decision.alternatives[0].entry.id if decision.alternatives else None


@dataclass
class Outcome:
    conversation: Conversation
    alone: Decision
    together: Decision

    def right(self, decision: Decision) -> bool:
        if "urgent" in self.conversation.expected:
            return decision.status == "urgent"
        return decision.status == "answered" and _top(decision) in self.conversation.expected

    def top_right(self, decision: Decision) -> bool:
        return _top(decision) in self.conversation.expected


def run(answerer: Answerer, conversations: Sequence[Conversation]) -> list[Outcome]:
    return [Outcome(c, answerer.ask(c.last), answerer.ask(c.last, context=c.turns)) for c in conversations]


@dataclass
class Report:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        count = len(outcomes)
        row: dict[str, Any] = {"conversations": count}
        row["right_with_context"] = round(sum(o.right(o.together) for o in outcomes) / count, 4)
        row["right_alone"] = round(sum(o.right(o.alone) for o in outcomes) / count, 4)
        row["p_at_1_with_context"] = round(sum(o.top_right(o.together) for o in outcomes) / count, 4)
        row["p_at_1_alone"] = round(sum(o.top_right(o.alone) for o in outcomes) / count, 4)
        row["read_in_context"] = sum(o.together.context is not None for o in outcomes)
        row["escalated"] = sum(o.together.status == "urgent" for o in outcomes)
        self.rows[name] = row


def report(outcomes: Sequence[Outcome]) -> Report:
    """Figures per kind, per corpus and kind, and per half."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        c = outcome.conversation
        kind = "benign" if c.benign else c.kind
        for name in (kind, f"{kind} / {c.corpus}", f"{kind} / {c.half}"):
            groups[name].append(outcome)
    result = Report()
    for name in sorted(groups):
        result.add(name, groups[name])
    return result


def misses(outcomes: Sequence[Outcome], *, half: str | None = None) -> list[str]:
    """One line per conversation answered wrongly in context (for reading the tuning half)."""
    lines = []
    for outcome in outcomes:
        c = outcome.conversation
        if (half is None or c.half == half) and not outcome.right(outcome.together):
            turns = " | ".join(turn.question for turn in c.turns)
            lines.append(
                f"[{c.kind}/{c.corpus}] {turns} || {c.last} -> {outcome.together.status} {_top(outcome.together)} "
                f"(alone: {outcome.alone.status} {_top(outcome.alone)}; expected {sorted(c.expected)})"
            )
    return lines


# a turn of the bundled corpus after which questions it does not cover are asked (``off_topic``)
OFF_TOPIC_TURN = Turn("what is a back spasm?", "what-is-a-spasm-in-the-back")
# the question files of tests/data the bundled corpus does not cover
UNCOVERED_FILES = ("offtopic_queries.jsonl", "uncovered_health.tune.jsonl", "uncovered_health.report.jsonl")


def uncovered_questions(paths: Sequence[Path]) -> list[str]:
    """The ``query`` of every line of the question files ``paths``."""
    return [json.loads(line)["query"] for path in paths for line in path.read_text("utf-8").splitlines() if line]


def off_topic(answerer: Answerer, questions: Sequence[str], turn: Turn = OFF_TOPIC_TURN) -> dict[str, Any]:
    """How many questions the corpus does not cover are answered alone, and after a turn it answered:
    reading a message in context must not make an unrelated question look covered."""
    return {
        "questions": len(questions),
        "answered_alone": sum(answerer.ask(q).status == "answered" for q in questions),
        "answered_in_context": sum(answerer.ask(q, context=[turn]).status == "answered" for q in questions),
    }


def check(
    sets: Sequence[Path], work: Path, *, corpus_dir: Path, clinic_faq: Path, uncovered: Sequence[Path] = ()
) -> tuple[Report, list[str]]:
    """Builds the bundled corpus and the clinic FAQ with the default model into ``work`` and runs
    the conversation ``sets`` against them, and the ``uncovered`` question files (``query`` per
    line) after a bundled turn (``scripts/conversation_check.py``)."""
    from qa_service.answering.engine import load_engine
    from qa_service.build.pipeline import build_index
    from qa_service.model.embedder import embedder_from_settings
    from qa_service.settings import DEFAULT_MODEL, Settings

    answerers = {}
    embedder = None
    for name, source in (("bundled", corpus_dir), ("clinic", None)):
        if source is None:
            source = work / "clinic-corpus"
            source.mkdir(parents=True, exist_ok=True)
            (source / "clinic.yaml").write_bytes(clinic_faq.read_bytes())
        settings = Settings(_env_file=None, corpus_dir=source, index_dir=work / f"{name}-index", model=DEFAULT_MODEL)
        embedder = embedder or embedder_from_settings(settings)
        build_index(settings, embedder)
        answerers[name] = load_engine(settings, embedder).answerer
    outcomes: list[Outcome] = []
    for path in sets:
        chats = load_conversations(path)
        for name, answerer in answerers.items():
            outcomes += run(answerer, [c for c in chats if c.corpus == name])
    result = report(outcomes)
    questions = uncovered_questions(uncovered)
    if questions:
        result.rows["off_topic_after_a_turn"] = off_topic(answerers["bundled"], questions)
    return result, misses(outcomes)
