from __future__ import annotations

import pytest
from pydantic import ValidationError

from qa_service.build.finetune import GENTLE, THOROUGH, epochs_for, plan_training, training_pairs, training_strength
from qa_service.corpus.entries import FaqEntry
from qa_service.settings import Settings


def entry(entry_id: str, question: str, answer: str, alternates: tuple[str, ...] = ()) -> FaqEntry:
    return FaqEntry(id=entry_id, question=question, answer=answer, alternates=list(alternates))


ENTRIES = [
    entry("a", "How long do spasms last?", "A few days.", ("When will my spasm stop?",)),
    entry("b", "Is walking good?", "Yes, walk."),
    entry("c", "Should I walk with a spasm?", "Yes, walk."),  # same answer as b
    entry("d", "What is X?", ""),  # no answer: nothing to learn from
]


def test_pairs_come_from_what_the_corpus_says_is_equivalent() -> None:
    pairs = {(p.anchor, p.positive) for p in training_pairs(ENTRIES)}
    assert ("How long do spasms last?", "A few days.") in pairs
    assert ("When will my spasm stop?", "A few days.") in pairs
    assert ("When will my spasm stop?", "How long do spasms last?") in pairs
    assert ("Is walking good?", "Should I walk with a spasm?") in pairs  # one answer, two questions
    assert not any("What is X?" in pair for pair in pairs)


def test_batches_never_pair_two_items_of_one_group_and_are_seeded() -> None:
    pairs = training_pairs(ENTRIES)
    plan = plan_training(pairs, batch_size=8, epochs=3, max_steps=100, seed=1)
    for batch in plan.batches:
        assert len({p.group for p in batch}) == len(batch) >= 2
        texts = [t for p in batch for t in (p.anchor, p.positive)]
        assert len(set(texts)) == len(texts)
    again = plan_training(pairs, batch_size=8, epochs=3, max_steps=100, seed=1)
    assert again.batches == plan.batches
    assert plan_training(pairs, batch_size=8, epochs=3, max_steps=2, seed=1).steps == 2


def test_small_corpora_get_more_epochs() -> None:
    assert epochs_for(60, 32, target_steps=120, max_epochs=4) == 4
    assert epochs_for(20000, 32, target_steps=120, max_epochs=4) == 1


def test_training_is_thorough_when_it_sees_every_pair_and_gentle_when_it_cannot() -> None:
    many = [entry(f"e{i}", f"Question number {i}?", f"Answer number {i}.") for i in range(100)]
    pairs = training_pairs(many)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.finetune_learning_rate == settings.finetune_mix == "auto"
    every_pair = plan_training(pairs, batch_size=32, epochs=1, max_steps=100, seed=0)
    assert training_strength(every_pair, settings) == THOROUGH == (2e-4, 0.5)
    a_part = plan_training(pairs, batch_size=32, epochs=1, max_steps=2, seed=0)  # 64 of 100 pairs
    assert training_strength(a_part, settings) == GENTLE == (5e-5, 1.0)
    chosen = settings.model_copy(update={"finetune_learning_rate": 1e-4, "finetune_mix": 0.8})
    assert training_strength(every_pair, chosen) == training_strength(a_part, chosen) == (1e-4, 0.8)


def test_training_settings_read_auto_or_a_number_in_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_FINETUNE_MIX", "0.7")
    monkeypatch.setenv("QA_FINETUNE_LEARNING_RATE", "auto")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.finetune_mix, settings.finetune_learning_rate) == (0.7, "auto")
    for name, value in [("QA_FINETUNE_MIX", "1.5"), ("QA_FINETUNE_MIX", "most"), ("QA_FINETUNE_LEARNING_RATE", "0")]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)  # type: ignore[call-arg]
        monkeypatch.setenv(name, "auto")
