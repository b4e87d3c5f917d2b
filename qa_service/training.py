"""Build-time adaptation of the embedding model to one corpus, from the corpus alone (no user queries).

Training pairs come from what the corpus says is equivalent: a question and its answer, an alternate
phrasing and its question (and answer), and questions of different entries that share one answer.
Batches hold at most one pair per answer group, so an in-batch "negative" is never a true match.
Pure Python; the training loop itself lives with the model in ``embedder.py``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from qa_service.corpus import FaqEntry


@dataclass(frozen=True)
class TrainingPair:
    anchor: str
    positive: str
    group: str  # pairs of one group must not meet in a batch


@dataclass(frozen=True)
class TrainingPlan:
    """What to train on and for how long; ``steps`` follows from the data, so a build is repeatable."""

    batches: list[list[TrainingPair]]
    epochs: int
    pair_count: int

    @property
    def steps(self) -> int:
        return len(self.batches)


def _answer_key(entry: FaqEntry) -> str:
    return " ".join(entry.answer.lower().split())


def training_pairs(
    entries: Sequence[FaqEntry], *, max_question_pairs_per_group: int = 12, seed: int = 0
) -> list[TrainingPair]:
    """Equivalences the corpus states, as (anchor, positive, group) pairs."""
    rng = random.Random(seed)
    pairs: list[TrainingPair] = []
    by_answer: dict[str, list[FaqEntry]] = defaultdict(list)
    for entry in entries:
        if entry.answer:
            by_answer[_answer_key(entry)].append(entry)
    for key, members in by_answer.items():
        answer = members[0].answer
        questions = list(dict.fromkeys(q for m in members for q in [m.question, *m.alternates]))
        pairs.extend(TrainingPair(question, answer, key) for question in questions)
        pairs.extend(
            TrainingPair(alternate, member.question, key) for member in members for alternate in member.alternates
        )
        if len(members) > 1:  # different entries with one answer: their questions mean the same
            own = [m.question for m in members]
            same = [TrainingPair(a, b, key) for i, a in enumerate(own) for j, b in enumerate(own) if i != j]
            rng.shuffle(same)
            pairs.extend(same[:max_question_pairs_per_group])
    return pairs


def plan_training(
    pairs: Sequence[TrainingPair], *, batch_size: int, epochs: int, max_steps: int, seed: int
) -> TrainingPlan:
    """Shuffle (seeded) into batches in which no group and no text occurs twice, epoch after epoch.

    A pair that does not fit the current batch waits for the next one; a batch needs two pairs
    (one pair has no negatives), so a last lonely pair of an epoch is left out."""
    rng = random.Random(seed)
    batches: list[list[TrainingPair]] = []
    for _ in range(epochs):
        waiting = list(pairs)
        rng.shuffle(waiting)
        while waiting:
            batch: list[TrainingPair] = []
            groups: set[str] = set()
            texts: set[str] = set()
            rest: list[TrainingPair] = []
            for number, pair in enumerate(waiting):
                if len(batch) == batch_size:  # full: the others wait, in order (no need to look at each)
                    rest.extend(waiting[number:])
                    break
                if pair.group not in groups and not {pair.anchor, pair.positive} & texts:
                    batch.append(pair)
                    groups.add(pair.group)
                    texts |= {pair.anchor, pair.positive}
                else:
                    rest.append(pair)
            if len(batch) >= 2:
                batches.append(batch)
                if len(batches) >= max_steps:
                    return TrainingPlan(batches, epochs, len(pairs))
            waiting = rest
    return TrainingPlan(batches, epochs, len(pairs))


def epochs_for(pair_count: int, batch_size: int, *, target_steps: int, max_epochs: int) -> int:
    """Small corpora get several passes, large ones one: about ``target_steps`` steps in all."""
    per_epoch = max(1, math.ceil(pair_count / batch_size))
    return max(1, min(max_epochs, target_steps // per_epoch))
