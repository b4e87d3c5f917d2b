"""Follow-up questions read in the context of the conversation, with nothing kept on the server.

The client (the chat widget) sends the conversation's previous turns with each new message: what the
patient asked and the id of the entry that answered it. The service reads the new message on its own
and, when the message leans on what came before ("how long does it last?", "what about for kids?") or
finds no answer alone, also together with the topic of the latest turn: the question of the entry that
answered it (the FAQ's own words), else the patient's previous question. The reply that used the topic
says so. Red-flag rules run on the new message and on the turns together, so an emergency told over two
messages is escalated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa_service.corpus.entries import FaqEntry
from qa_service.index.keywords import tokenize

MAX_TURNS = 3  # the previous turns a request may carry

# words that point back at something said before ("is it contagious", "is that serious"; but not
# "this year"), and openings that continue a previous question
_POINTS_BACK = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|he|she|him|her|same)\b"
    r"|\b(?:this|that|these|those)\b(?!\s+(?:year|week|month|day|time|morning|afternoon|evening|night|weekend"
    r"|season|winter|summer|spring|autumn|fall)s?\b)",
    re.IGNORECASE,
)
_CONTINUES = re.compile(r"^\W*(?:and|but|also|so|or|plus|then|what about|how about|what if|same for)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# words that ask rather than name a topic: function words and the words of chat
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "for",
        "from",
        "get",
        "gets",
        "getting",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "it's",
        "just",
        "me",
        "might",
        "more",
        "most",
        "my",
        "no",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "please",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "tell",
        "know",
        "think",
        "thanks",
        "thank",
        "hi",
        "hello",
        "ok",
        "okay",
        "well",
        "really",
        "still",
    ]
)


@dataclass(frozen=True)
class Turn:
    """One earlier turn of the conversation, as the client sends it."""

    question: str
    answer_id: str | None = None


@dataclass(frozen=True)
class Topic:
    """What a follow-up is read with: ``text`` is added to the message for matching, ``about`` is shown."""

    text: str
    about: str
    answer_id: str | None  # the entry that answered the turn the topic comes from


def leans_on_context(message: str) -> bool:
    """Whether a message reads as a follow-up: pointing back ("is it contagious?", "a vaccine for
    that?") or continuing ("and for kids?", "what about ..."). A message that does not, and finds an
    answer on its own, is answered on its own."""
    return bool(_POINTS_BACK.search(message) or _CONTINUES.match(message))


def asks_it_all(message: str, entry: FaqEntry) -> bool:
    """Whether a message holds every word of the entry's question (or of one of its phrasings) that
    carries meaning: "..., how do i treat a sprained ankle" asks "How do I treat a sprained ankle?";
    "best treatment for scalp psoriasis" does not ask "What is the best treatment for spasms?"."""
    said = set(tokenize(message))
    return any((words := set(tokenize(phrasing))) and words <= said for phrasing in (entry.question, *entry.alternates))


def names_rather(message: str, own: FaqEntry, other: FaqEntry) -> bool:
    """Whether a message says what tells its own answer's question from the one read in context:
    "when should I see a dr about covid, had it 5 days" names COVID-19 (its own answer: "When should I
    see a doctor for COVID-19?") rather than strep throat (the conversation's), though it says "it";
    "how long is it contagious?" names neither."""
    said = set(tokenize(message))
    others = set(tokenize(other.question))
    return any(set(tokenize(phrasing)) - others & said for phrasing in (own.question, *own.alternates))


def same_subject(message: str, subject: str, candidate: FaqEntry) -> bool:
    """Whether ``candidate`` shares a word of the conversation's ``subject`` (the question of the entry
    that answered the earlier turn, else what the patient said) that the message does not say ("strep"
    of "What is strep throat?" for "how is it treated?" answered "How is strep throat treated?"): the
    reading in context stayed on the conversation's subject."""
    words = set(tokenize(subject)) - set(tokenize(message))
    return any(words & set(tokenize(phrasing)) for phrasing in (candidate.question, *candidate.alternates))


def topic_of(turns: Sequence[Turn], question_of: Callable[[str], str | None]) -> Topic | None:
    """The topic of the latest turn that has one: the question of the entry that answered it
    (``question_of`` gives a served entry's question by id, None for an unknown id), else what the
    patient asked.
    Its words that carry meaning are kept ("What is strep throat?" -> "strep throat"), so that what
    the earlier question asked does not outweigh what the new one asks."""
    for turn in reversed(turns):
        question = question_of(turn.answer_id) if turn.answer_id else None
        source = question if question is not None else turn.question
        words = [word for word in _WORD.findall(source) if word.casefold() not in _FUNCTION_WORDS]
        if words:
            return Topic(" ".join(words), source, turn.answer_id if question is not None else None)
    return None


def read_with(message: str, topic_words: str) -> str:
    """The message's words as they are matched in context: followed by the topic's."""
    return f"{message} {topic_words}"


def told_together(turns: Sequence[Turn], message: str) -> tuple[str, str]:
    """(the earlier turns' words, the earlier turns and the new message together), for the red-flag
    rules: an emergency may be told over several messages."""
    before = "\n".join(turn.question for turn in turns if turn.question.strip())
    return before, f"{before}\n{message}" if before else message
