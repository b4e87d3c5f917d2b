"""The unanswered-question review: what patients asked that the FAQ did not answer, and what to fix.

``qa-service review`` reads the feedback store and the current index and reports:

- the questions that got ``no_answer`` or ``clarify`` (scrubbed, within the retention period),
  grouped by meaning with counts, most frequent first;
- for each group, the entry it most resembles: a suggested alternate phrasing to add to that
  entry (a person decides; nothing is changed automatically);
- the answers with the most "not helpful" votes, with the reasons given.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from qa_service.answering.decision import rival_of
from qa_service.answering.engine import Engine
from qa_service.ops.storage import FeedbackStore

REMOVED = (
    "names of people and places below state level ([name], [place]), street addresses ([address]), ZIP codes "
    "and postcodes ([zip]), dates ([date]), ages over 89 ([age 90+]), phone and fax numbers ([phone]), e-mail "
    "addresses ([email]), links ([link]) and IP addresses ([ip]), record, account, insurance and licence numbers "
    "([number]), vehicle plates ([vehicle]) and device serials ([device])"
)
GROUP_SIMILARITY = 0.75  # cosine between a question and a group's first question to join the group
SUGGEST_MIN_CONFIDENCE = 0.05  # below this the closest entry is unrelated: no suggestion


@dataclass(frozen=True)
class Suggestion:
    entry_id: str
    entry_question: str
    phrasing: str  # the alternate to add
    confidence: float  # how sure the service is today that the entry answers it


@dataclass
class QuestionGroup:
    questions: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    suggestion: Suggestion | None = None

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def representative(self) -> str:
        return Counter(self.questions).most_common(1)[0][0]


@dataclass(frozen=True)
class AnswerVotes:
    answer_id: str
    question: str
    helpful: int
    not_helpful: int
    reasons: list[str]


@dataclass(frozen=True)
class Review:
    groups: list[QuestionGroup]
    votes: list[AnswerVotes]
    generated_at: float


def group_questions(questions: list[str], vectors: np.ndarray, similarity: float) -> list[QuestionGroup]:
    """Greedy grouping: each question joins the first group whose first question is close enough."""
    groups: list[QuestionGroup] = []
    heads: list[np.ndarray] = []
    for question, vector in zip(questions, vectors, strict=True):
        scores = [float(head @ vector) for head in heads]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= similarity:
            groups[best].questions.append(question)
        else:
            groups.append(QuestionGroup([question]))
            heads.append(vector)
    return groups


def build_review(
    store: FeedbackStore,
    engine: Engine,
    *,
    similarity: float = GROUP_SIMILARITY,
    min_confidence: float = SUGGEST_MIN_CONFIDENCE,
) -> Review:
    unanswered = store.unanswered()
    questions = [item.question for item in unanswered]
    groups: list[QuestionGroup] = []
    if questions:
        vectors = np.asarray(engine.embedder.encode(questions), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        groups = group_questions(questions, vectors / np.maximum(norms, 1e-12), similarity)
        status_of = defaultdict(list)
        for item in unanswered:
            status_of[item.question].append(item.status)
        for group in groups:
            for question in group.questions:
                group.statuses.update(status_of[question][:1])
        answerer = engine.answerer
        for group, ranked in zip(groups, answerer.candidates([g.representative for g in groups], k=10), strict=True):
            if not ranked:
                continue
            best, rival = ranked[0], rival_of(ranked)
            confidence = answerer.confidence.confidence(best, rival.score if rival is not None else None)
            if confidence >= min_confidence:
                group.suggestion = Suggestion(best.entry.id, best.entry.question, group.representative, confidence)
        groups.sort(key=lambda g: (-g.count, g.representative))
    votes = _votes(store, engine)
    return Review(groups, votes, time.time())


def _votes(store: FeedbackStore, engine: Engine) -> list[AnswerVotes]:
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: dict[str, list[str]] = defaultdict(list)
    for item in store.feedback():
        tally[item.answer_id][0 if item.helpful else 1] += 1
        if not item.helpful and item.reason:
            reasons[item.answer_id].append(item.reason)
    votes = []
    for answer_id, (helpful, not_helpful) in tally.items():
        entry = engine.index.entry(answer_id)
        question = entry.question if entry is not None else "(no longer in the FAQ)"
        votes.append(AnswerVotes(answer_id, question, helpful, not_helpful, reasons[answer_id][-5:]))
    votes.sort(key=lambda v: (-v.not_helpful, v.helpful, v.answer_id))
    return [v for v in votes if v.not_helpful]


def render_markdown(review: Review, *, retention_days: float) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(review.generated_at))
    total = sum(group.count for group in review.groups)
    lines = [
        "# FAQ review",
        "",
        f"Generated {when}. Questions are kept for {retention_days:g} days and were scrubbed of personal details.",
        "",
        f"Removed before storing: {REMOVED}. Medical words (drugs, spinal levels such as L5, doses, "
        '"Dr." before a role) are kept. To check: `qa-service deid-eval` (recall per type on a labelled set).',
        "",
        f"## Unanswered questions ({total} in {len(review.groups)} groups)",
        "",
    ]
    if not review.groups:
        lines += ["None recorded (set QA_RECORD_UNANSWERED=true to record them).", ""]
    for number, group in enumerate(review.groups, start=1):
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(group.statuses.items()))
        lines.append(f"{number}. **{group.representative}** - asked {group.count}x ({statuses})")
        for other in sorted(set(group.questions) - {group.representative})[:5]:
            lines.append(f"   - {other}")
        if group.suggestion is not None:
            s = group.suggestion
            lines.append(
                f'   - suggestion: add "{s.phrasing}" to the alternates of `{s.entry_id}` '
                f'("{s.entry_question}"; confidence today {s.confidence:.2f}), or write a new entry'
            )
        else:
            lines.append("   - suggestion: no entry is close; consider writing a new one")
    lines += ["", f"## Answers voted not helpful ({len(review.votes)})", ""]
    if not review.votes:
        lines.append("None.")
    for vote in review.votes:
        lines.append(f"- `{vote.answer_id}` ({vote.question}): {vote.not_helpful} not helpful, {vote.helpful} helpful")
        for reason in vote.reasons:
            lines.append(f'  - "{reason}"')
    return "\n".join(lines) + "\n"
