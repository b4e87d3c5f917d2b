from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa_service.index.keywords import KeywordIndex, TermCache, tokenize


def test_tokenize_drops_stopwords_and_light_stems() -> None:
    assert tokenize("How long do back spasms last?") == ["long", "back", "spasm", "last"]
    assert tokenize("Stretches and remedies, Café") == ["stretch", "remedy", "cafe"]
    assert tokenize("the of and") == []


@pytest.fixture
def index() -> KeywordIndex:
    questions = ["How long do back spasms last?", "Is walking good for back pain?", "What is zolmitriptan?"]
    answers = ["A few days.", "Walking eases lower back pain.", "A migraine medicine."]
    return KeywordIndex.build([questions, [f"{q} {a}" for q, a in zip(questions, answers, strict=True)]])


def test_scores_are_absolute_coverage_of_the_question(index: KeywordIndex) -> None:
    full = index.scores("how long do back spasms last")
    assert int(np.argmax(full)) == 0 and 0.8 < full[0] <= 1.0
    rare = index.scores("zolmitriptan")
    assert int(np.argmax(rare)) == 2 and rare[2] > 0.9
    # words the FAQ never uses lower every score: the question is mostly about something else
    partial = index.scores("zolmitriptan celiac gluten tablets")
    assert partial[2] < 0.5 * rare[2]
    assert not index.scores("banana bread recipe").any()
    assert not index.scores("").any()


def test_known_share_is_the_share_of_question_words_the_corpus_uses(index: KeywordIndex) -> None:
    assert index.known_share("how long do back spasms last") == 1.0
    # of know / headache / migraine, the corpus uses "migraine" only
    assert index.known_share("how do I know if my headaches are migraines") == pytest.approx(1 / 3)
    assert index.known_share("are back spasms dangerous") == pytest.approx(2 / 3)
    assert index.known_share("back spazms") == 1.0  # a misspelling of a corpus word counts as known
    assert index.known_share("the of and") == 0.0


def test_save_and_load_round_trip(index: KeywordIndex, tmp_path: Path) -> None:
    names = index.save(tmp_path)
    assert sorted(names) == ["keywords.npz", "keywords.vocab.json"]
    loaded = KeywordIndex.load(tmp_path)
    for query in ["back pain walking", "zolmitriptan", "nothing here"]:
        assert np.allclose(loaded.scores(query), index.scores(query))


def test_misspelt_words_meet_the_corpus_word_one_edit_away() -> None:
    index = KeywordIndex.build([["upper back spasm stretches", "seeing a chiropractor", "calf cramps"], ["", "", ""]])
    assert index.query_terms("upper back spasm streches") == {"upper", "back", "spasm", "stretch"}
    assert index.query_terms("chiropracter") == {"chiropractor"}
    assert index.query_terms("spazms") == {"spasm"}
    assert index.query_terms("half") == {"half"}  # short words are left alone ("calf")
    assert index.query_terms("migraine") == {"migraine"}  # nothing one edit away
    assert int(np.argmax(index.scores("chiropracter"))) == 1


def test_columns_are_numbered_by_first_use_field_after_field() -> None:
    cache = TermCache()
    cache.postings(["zebra gallop", "apple"])  # the cache numbers terms in its own order, seen before
    index = KeywordIndex.build([["apple pie", "gallop apple"], ["zebra", "pie crust"]], cache)
    assert list(index.vocab) == ["apple", "pie", "gallop", "zebra", "crust"]
    assert list(KeywordIndex.build([["apple pie", "gallop apple"], ["zebra", "pie crust"]]).vocab) == list(index.vocab)


def _same_index(a: KeywordIndex, b: KeywordIndex) -> None:
    assert a.vocab == b.vocab and list(a.vocab) == list(b.vocab)  # same columns in the same order
    for first, second in zip(a.fields, b.fields, strict=True):
        assert first.shape == second.shape
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(first, part), getattr(second, part))
    for first_idf, second_idf in zip(a.idf, b.idf, strict=True):
        assert np.array_equal(first_idf, second_idf)


def test_a_rebuild_with_the_term_cache_tokenises_only_changed_texts_and_equals_a_fresh_build(tmp_path: Path) -> None:
    questions = ["How long do back spasms last?", "Is walking good for back pain?", "What is zolmitriptan?"]
    qa = [f"{q} {a}" for q, a in zip(questions, ["A few days.", "Walking helps.", "A migraine medicine."], strict=True)]
    path = tmp_path / "terms.npz"
    cache = TermCache(path)
    _same_index(KeywordIndex.build([questions, qa], cache), KeywordIndex.build([questions, qa]))
    assert cache.misses == 6
    cache.save()

    # one answer edited, one entry removed, one added (with words the corpus never had)
    edited_questions = [questions[0], questions[2], "Can hiccups be dangerous?"]
    edited_qa = [qa[0], qa[2] + " Ask your pharmacist.", "Can hiccups be dangerous? Rarely."]
    again = TermCache(path)
    rebuilt = KeywordIndex.build([edited_questions, edited_qa], again)
    assert (again.hits, again.misses) == (3, 3)
    _same_index(rebuilt, KeywordIndex.build([edited_questions, edited_qa]))
    assert "walking" not in rebuilt.vocab and "hiccup" in rebuilt.vocab  # removed words leave the vocabulary
    again.save()
    reread = TermCache(path)
    reread.postings(edited_questions + edited_qa)
    assert reread.misses == 0
    kept = TermCache(path)
    kept.postings([questions[1]])  # dropped from the file: only the last build's texts are kept
    assert kept.misses == 1


def test_an_unreadable_term_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "terms.npz"
    path.write_bytes(b"not a zip file")
    cache = TermCache(path)
    texts = ["back spasm", "neck pain"]
    _same_index(KeywordIndex.build([texts], cache), KeywordIndex.build([texts]))
    assert cache.misses == 2
    cache.save()  # replaced by a good one
    assert TermCache(path).terms


def test_scoring_several_queries_at_once_gives_each_its_own_scores(index: KeywordIndex) -> None:
    queries = ["how long do back spasms last", "", "zolmitriptan celiac", "banana bread", "chiropracter"]
    together = index.scores_many(queries)
    assert together.shape == (len(queries), index.size)
    for row, query in zip(together, queries, strict=True):
        assert np.array_equal(row, index.scores(query))
    assert not together[1].any() and not together[3].any()
