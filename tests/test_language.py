from __future__ import annotations

import logging

import pytest

from qa_service.answering import language
from qa_service.answering.language import LanguageGuard, language_list


@pytest.fixture(scope="module")
def english() -> LanguageGuard:
    return LanguageGuard(["en"])


@pytest.mark.parametrize(
    "question",
    [
        "¿Cuánto dura un espasmo de espalda?",
        "tengo dolor de espalda que hago",
        "Wie lange dauert ein Rückenkrampf?",
        "Qu'est-ce qui provoque les spasmes musculaires?",
        "quanto tempo dura uno spasmo alla schiena",
        "Сколько длится спазм спины?",
        "背部肌肉痉挛怎么办",
    ],
)
def test_other_languages_are_recognised(english: LanguageGuard, question: str) -> None:
    assert english.detect(question) is not None


@pytest.mark.parametrize(
    "question",
    [
        "how long will my back spasm last",
        "hi",
        "symptoms?",
        "does covid die in heat",
        "upper back spasm streches",
        "CAUSE OF A COLD\ni UNDERSTAND CONTAGION AND TRANSFERRENCE OF COLD GERMS",
        "Zolmitriptan tabkets 5mg gluten",
    ],
)
def test_english_is_never_refused(english: LanguageGuard, question: str) -> None:
    assert english.detect(question) is None


def test_supported_languages_are_configurable() -> None:
    assert LanguageGuard(["en", "es"]).detect("¿Cuánto dura un espasmo de espalda?") is None
    assert LanguageGuard([]).detect("Wie lange dauert ein Rückenkrampf?") is None
    with pytest.raises(ValueError, match="unknown language code"):
        LanguageGuard(["xx"])


def test_language_names() -> None:
    assert language_list(["en"]) == "English"
    assert language_list(["en", "es", "fr"]) == "English, Spanish and French"


MIXED = [
    "how long will my back spasm last",
    "¿Cuánto dura un espasmo de espalda?",
    "Wie lange dauert ein Rückenkrampf?",
    "",
    "???",
    "背部肌肉痉挛怎么办",
    "CAUSE OF A COLD\ni UNDERSTAND CONTAGION AND TRANSFERRENCE OF COLD GERMS",
]


@pytest.mark.parametrize("supported", [["en"], ["en", "es"], ["de"]])
def test_a_batch_is_identified_as_each_text_alone(supported: list[str]) -> None:
    guard = LanguageGuard(supported)
    together = guard.detect_many(MIXED)
    assert guard._batch is not None  # the batch scorer passed its load-time check
    assert together == [guard.detect(text) for text in MIXED]
    # and as py3langid's own per-text ranking decides
    identifier = guard._load()
    for text, found in zip(MIXED, together, strict=True):
        ranking = identifier.rank(text.lower())
        supported_share = sum(p for code, p in ranking if code in supported)
        assert found == (None if supported_share >= 0.02 else ranking[0][0])


def test_a_batch_scorer_that_disagrees_with_py3langid_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = language._BatchScorer.probabilities
    monkeypatch.setattr(language._BatchScorer, "probabilities", lambda self, texts: original(self, texts)[:, ::-1])
    guard = LanguageGuard(["en"])
    with caplog.at_level(logging.WARNING, logger="qa_service.answering.language"):
        found = guard.detect_many(MIXED)
    assert guard._batch is None and "differ" in caplog.text
    assert found[0] is None and found[1] == "es" and found[2] == "de"  # py3langid text by text
