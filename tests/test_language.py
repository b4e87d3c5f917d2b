from __future__ import annotations

import pytest

from qa_service.language import LanguageGuard, language_list


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
