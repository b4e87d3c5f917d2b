"""Offline evaluation on a labelled FAQ dataset (the ``../shared/datasets/*`` format).

``faq.jsonl`` rows: id, question, answer, source. ``queries*.jsonl`` rows: query, relevant (list of
FAQ ids; empty for questions the FAQ does not answer). The FAQ is built into a temporary index with
the configured pipeline and every query goes through the same decision logic as the API.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa_service.answering.calibration import ConfidenceModel, reference_questions
from qa_service.answering.coverage import Coverage
from qa_service.answering.decision import Candidate, Decision, DecisionPolicy, decide, rival_of
from qa_service.answering.engine import Engine, load_engine
from qa_service.build.pipeline import prepare_build
from qa_service.corpus.entries import FaqEntry, load_corpus, load_corpus_file
from qa_service.corpus.importers.common import iter_jsonl_objects, read_text
from qa_service.corpus.importers.tabular import parse_jsonl
from qa_service.corpus.synonyms import load_synonyms
from qa_service.errors import CorpusError
from qa_service.index.store import publish_build
from qa_service.model.embedder import Embedder
from qa_service.settings import Settings

METRIC_KEYS = (
    "p_at_1",
    "wrong_answer_rate",
    "mrr_at_10",
    "recall_at_5",
    "answered_correct",
    "declined_answerable",
)
NOANSWER_KEY = "declined_noanswer"


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]
    where: str = field(default="", compare=False)  # "file:line", for error messages


def load_queries(path: Path) -> list[LabelledQuery]:
    queries = []
    for where, row in iter_jsonl_objects(read_text(path), path):
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise CorpusError(f"{where}: each line needs a non-empty 'query' string")
        relevant = row.get("relevant", [])
        if not isinstance(relevant, list) or not all(isinstance(item, str) for item in relevant):
            raise CorpusError(f"{where}: 'relevant' must be a list of FAQ ids")
        queries.append(LabelledQuery(row["query"], frozenset(relevant), where))
    if not queries:
        raise CorpusError(f"{path}: no queries (one JSON object per line, with 'query' and 'relevant')")
    return queries


def load_faq(path: Path) -> list[FaqEntry]:
    """A dataset's faq.jsonl (answers may be empty), or a corpus folder / YAML file of our own format."""
    if path.is_dir():
        return list(load_corpus(path).entries)
    if path.suffix in {".yaml", ".yml"}:
        return list(load_corpus_file(path).entries)
    return parse_jsonl(read_text(path), path=path, require_answers=False).entries


@dataclass(frozen=True)
class EvalRun:
    """Rankings of every query, kept so decisions can be recomputed for other thresholds."""

    answerable: list[LabelledQuery]
    rankings: list[list[Candidate]]
    noanswer_rankings: list[list[Candidate]] | None
    entry_count: int
    calibration: dict[str, float] | None = None
    reference_rankings: list[list[Candidate]] | None = None  # the off-topic reference questions
    noanswer: list[LabelledQuery] | None = None
    coverage: list[Coverage] | None = None  # of each answerable query (None: not judged)
    noanswer_coverage: list[Coverage] | None = None
    urgent: list[bool] | None = None  # a red-flag rule fires on the answerable query (the API escalates it)
    noanswer_urgent: list[bool] | None = None


def _top(decision: Decision) -> Candidate | None:
    if decision.answer is not None:
        return decision.answer
    return decision.alternatives[0] if decision.alternatives else None


def _judged(coverage: list[Coverage] | None, count: int) -> list[Coverage | None]:
    """Each query's coverage judgement, or None for each when the run has none."""
    return list(coverage) if coverage is not None else [None] * count


def _shown(decision: Decision) -> list[Candidate]:
    """The entries a reply offers as answers: the answer, or the choices of a clarify reply."""
    if decision.status == "answered" and decision.answer is not None:
        return [decision.answer]
    return list(decision.alternatives) if decision.status == "clarify" else []


def score_run(run: EvalRun, policy: DecisionPolicy, top_k: int = 3) -> dict[str, float]:
    """The metrics of one run under one decision policy.

    Questions a red-flag rule escalates get no answer from the FAQ, as from the API: they count as
    declined (``declined_answerable``, ``declined_noanswer``), never as right or wrong.

    A wrong answer is a reply that shows only entries that do not answer the question: an answered
    reply with an irrelevant entry, or a clarify reply none of whose choices is relevant;
    ``wrong_answer_rate`` is their share of the answerable queries' replies that show anything."""
    confidence = ConfidenceModel.for_index(run.calibration)
    n = max(1, len(run.answerable))
    coverage = _judged(run.coverage, len(run.answerable))
    urgent = run.urgent or [False] * len(run.answerable)
    p1 = mrr = r5 = correct = wrong = shown_wrong = replied = declined = 0.0
    for query, ranking, covered, escalated in zip(run.answerable, run.rankings, coverage, urgent, strict=True):
        ids = [candidate.entry.id for candidate in ranking[:10]]
        rank = next((i for i, entry_id in enumerate(ids, start=1) if entry_id in query.relevant), None)
        p1 += rank == 1
        mrr += 1.0 / rank if rank else 0.0
        r5 += rank is not None and rank <= 5
        if escalated:  # the API replies urgent: no answer from the FAQ
            declined += 1
            continue
        decision = decide(ranking, policy, confidence, top_k, covered)
        top = _top(decision)
        if decision.status in ("answered", "clarify") and top is not None:
            if top.entry.id in query.relevant:
                correct += 1
            else:
                wrong += 1
        shown = _shown(decision)
        if shown:
            replied += 1
            shown_wrong += not any(candidate.entry.id in query.relevant for candidate in shown)
        declined += decision.status == "no_answer"
    metrics = {
        "p_at_1": p1 / n,
        "wrong_answer_rate": shown_wrong / max(1, replied),
        "mrr_at_10": mrr / n,
        "recall_at_5": r5 / n,
        "answered_correct": correct / n,
        "declined_answerable": declined / n,
        "answered_wrong": wrong / n,
    }
    if run.noanswer_rankings is not None:
        m = max(1, len(run.noanswer_rankings))
        judged = _judged(run.noanswer_coverage, len(run.noanswer_rankings))
        escalations = run.noanswer_urgent or [False] * len(run.noanswer_rankings)
        metrics[NOANSWER_KEY] = (
            sum(
                escalated or decide(r, policy, confidence, top_k, covered).status == "no_answer"
                for r, covered, escalated in zip(run.noanswer_rankings, judged, escalations, strict=True)
            )
            / m
        )
    return {key: round(value, 4) for key, value in metrics.items()}


def run_evaluation(
    faq_path: Path,
    queries_path: Path,
    embedder: Embedder,
    settings: Settings,
    *,
    noanswer_path: Path | None = None,
    progress: bool = False,
    keep_reference: bool = False,
) -> EvalRun:
    """Build a temporary index of ``faq_path`` with the configured pipeline and rank every query."""
    entries = load_faq(faq_path)
    answerable = load_queries(queries_path)
    noanswer = load_queries(noanswer_path) if noanswer_path else None
    known = {entry.id for entry in entries}
    for query in answerable:
        unknown = query.relevant - known
        if unknown:
            raise CorpusError(f"{query.where}: query {query.query!r} names unknown FAQ id(s) {sorted(unknown)}")
    for query in noanswer or []:
        if query.relevant:
            raise CorpusError(
                f"{query.where}: a question the FAQ does not answer has 'relevant' ids; "
                "it belongs in the --queries file"
            )
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        eval_settings = settings.model_copy(update={"index_dir": Path(tmp), "max_question_chars": 100_000})
        synonyms = load_synonyms(faq_path) if faq_path.is_dir() else None  # a corpus folder's synonyms.txt
        publish_build(Path(tmp), prepare_build(entries, embedder, eval_settings, progress=progress, synonyms=synonyms))
        engine = load_engine(eval_settings, embedder)
        return evaluate_engine(engine, answerable, noanswer, keep_reference=keep_reference, entry_count=len(entries))


def evaluate_engine(
    engine: Engine,
    answerable: list[LabelledQuery],
    noanswer: list[LabelledQuery] | None = None,
    *,
    keep_reference: bool = False,
    entry_count: int | None = None,
) -> EvalRun:
    """Rank every query against an index already built and loaded (``run_evaluation`` builds one);
    ``entry_count``: the FAQ's entries as read (default: those the index serves)."""
    answerer = engine.answerer
    rankings = answerer.candidates([q.query for q in answerable], k=10)
    noanswer_rankings = answerer.candidates([q.query for q in noanswer], k=10) if noanswer is not None else None
    return EvalRun(
        answerable,
        rankings,
        noanswer_rankings,
        len(engine.index.entries) if entry_count is None else entry_count,
        engine.index.manifest.calibration,
        answerer.candidates(reference_questions(), k=10) if keep_reference else None,
        noanswer,
        answerer.coverage_of([q.query for q in answerable], rankings),
        answerer.coverage_of([q.query for q in noanswer], noanswer_rankings)
        if noanswer is not None and noanswer_rankings is not None
        else None,
        answerer.escalated([q.query for q in answerable]),
        answerer.escalated([q.query for q in noanswer]) if noanswer is not None else None,
    )


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics `eval --json` prints: exactly METRIC_KEYS, plus declined_noanswer when measured."""
    return {key: metrics[key] for key in (*METRIC_KEYS, NOANSWER_KEY) if key in metrics}


def sweep(run: EvalRun, policy: DecisionPolicy, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Metrics as the answer threshold moves (the accuracy / coverage trade-off)."""
    rows = []
    for threshold in thresholds:
        metrics = score_run(run, replace(policy, answer_threshold=threshold))
        rows.append({"threshold": round(threshold, 4), **metrics})
    return rows


def feature_rows(run: EvalRun) -> list[dict[str, object]]:
    """Per query: what it was, whether the top entry is relevant, and the top candidates' scores."""
    rows: list[dict[str, object]] = []
    judged = _judged(run.coverage, len(run.answerable))
    labelled = [(q.query, q.relevant, r, c) for q, r, c in zip(run.answerable, run.rankings, judged, strict=True)]
    noanswer = run.noanswer or []
    judged = _judged(run.noanswer_coverage, len(noanswer))
    unlabelled = [
        (q.query, q.relevant, r, c) for q, r, c in zip(noanswer, run.noanswer_rankings or [], judged, strict=True)
    ]
    questions = reference_questions() if run.reference_rankings else []
    reference = [(q, frozenset[str](), r, None) for q, r in zip(questions, run.reference_rankings or [], strict=True)]
    for kind, items in (("answerable", labelled), ("noanswer", unlabelled), ("reference", reference)):
        for query, relevant, ranking, coverage in items:
            top = ranking[0] if ranking else None
            rival = rival_of(ranking)
            rows.append(
                {
                    "calibration": run.calibration,
                    "kind": kind,
                    "query": query,
                    "correct": bool(top and top.entry.id in relevant),
                    "relevant": sorted(relevant),
                    "rival": round(rival.score, 5) if rival else None,
                    "coverage": coverage_row(coverage),
                    "candidates": [
                        {
                            "id": c.entry.id,
                            "duplicates": list(c.entry.duplicates),
                            "score": round(c.score, 5),
                            "dense_question": round(c.dense_question, 5),
                            "dense_qa": round(c.dense_qa, 5),
                            "keyword": round(c.keyword, 5),
                            "known": round(c.known, 5),
                        }
                        for c in ranking[:10]
                    ],
                }
            )
    return rows


def coverage_row(coverage: Coverage | None) -> dict[str, object] | None:
    """A coverage judgement as plain data (eval --features, ask --explain)."""
    if coverage is None:
        return None
    return {
        "covered": coverage.covered,
        "reason": coverage.reason,
        "unknown_words": coverage.unknown_words(),
        "unknown_share": coverage.unknown_share,
        "unknown_weight": coverage.unknown_weight,
        "topic": coverage.topic,
        "intents": list(coverage.intents),
        "level": coverage.level,
    }
