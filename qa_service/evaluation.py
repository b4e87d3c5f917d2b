"""Offline evaluation on a labelled FAQ dataset (the ``../shared/datasets/*`` format).

``faq.jsonl`` rows: id, question, answer, source. ``queries*.jsonl`` rows: query, relevant (list of
FAQ ids; empty for questions the FAQ does not answer). The FAQ is built into a temporary index with
the configured pipeline and every query goes through the same decision logic as the API.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from qa_service.answering import Answerer, Candidate, Decision, DecisionPolicy, decide
from qa_service.builder import prepare_build
from qa_service.corpus import FaqEntry, load_corpus, load_corpus_file
from qa_service.embedder import Embedder
from qa_service.errors import CorpusError
from qa_service.importers.common import iter_jsonl_objects, read_text
from qa_service.importers.tabular import parse_jsonl
from qa_service.index import load_index, publish_build

METRIC_KEYS = (
    "p_at_1",
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


def load_queries(path: Path) -> list[LabelledQuery]:
    queries = []
    for where, row in iter_jsonl_objects(read_text(path), path):
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise CorpusError(f"{where}: each line needs a non-empty 'query' string")
        relevant = row.get("relevant", [])
        if not isinstance(relevant, list) or not all(isinstance(item, str) for item in relevant):
            raise CorpusError(f"{where}: 'relevant' must be a list of FAQ ids")
        queries.append(LabelledQuery(row["query"], frozenset(relevant)))
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


def _top(decision: Decision) -> Candidate | None:
    if decision.answer is not None:
        return decision.answer
    return decision.alternatives[0] if decision.alternatives else None


def score_run(run: EvalRun, policy: DecisionPolicy, top_k: int = 3) -> dict[str, float]:
    """The metrics of one run under one decision policy."""
    n = max(1, len(run.answerable))
    p1 = mrr = r5 = correct = declined = 0.0
    for query, ranking in zip(run.answerable, run.rankings, strict=True):
        ids = [candidate.entry.id for candidate in ranking[:10]]
        rank = next((i for i, entry_id in enumerate(ids, start=1) if entry_id in query.relevant), None)
        p1 += rank == 1
        mrr += 1.0 / rank if rank else 0.0
        r5 += rank is not None and rank <= 5
        decision = decide(ranking, policy, top_k)
        top = _top(decision)
        if decision.status in ("answered", "clarify") and top is not None and top.entry.id in query.relevant:
            correct += 1
        declined += decision.status == "no_answer"
    metrics = {
        "p_at_1": p1 / n,
        "mrr_at_10": mrr / n,
        "recall_at_5": r5 / n,
        "answered_correct": correct / n,
        "declined_answerable": declined / n,
    }
    if run.noanswer_rankings is not None:
        m = max(1, len(run.noanswer_rankings))
        metrics[NOANSWER_KEY] = sum(decide(r, policy, top_k).status == "no_answer" for r in run.noanswer_rankings) / m
    return {key: round(value, 4) for key, value in metrics.items()}


def run_evaluation(
    faq_path: Path,
    queries_path: Path,
    embedder: Embedder,
    *,
    noanswer_path: Path | None = None,
    exclude_flags: Sequence[str] = (),
    batch_size: int = 64,
    progress: bool = False,
) -> EvalRun:
    """Build a temporary index of ``faq_path`` and rank every query against it."""
    entries = load_faq(faq_path)
    answerable = load_queries(queries_path)
    noanswer = load_queries(noanswer_path) if noanswer_path else None
    known = {entry.id for entry in entries}
    for query in answerable:
        unknown = query.relevant - known
        if unknown:
            raise CorpusError(f"{queries_path}: query {query.query!r} names unknown FAQ id(s) {sorted(unknown)}")
    content = prepare_build(entries, embedder, exclude_flags=exclude_flags, batch_size=batch_size, progress=progress)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        publish_build(Path(tmp), content)
        index = load_index(Path(tmp), model=content.model)
    policy = DecisionPolicy(0.0, 0.0, "", "", "", max_question_chars=100_000)
    answerer = Answerer(index, embedder, policy)
    rankings = answerer.candidates([q.query for q in answerable], k=10)
    noanswer_rankings = answerer.candidates([q.query for q in noanswer], k=10) if noanswer is not None else None
    return EvalRun(answerable, rankings, noanswer_rankings, len(entries))


def sweep(run: EvalRun, policy: DecisionPolicy, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Metrics as the answer threshold moves (the accuracy / coverage trade-off)."""
    rows = []
    for threshold in thresholds:
        metrics = score_run(run, replace(policy, answer_threshold=threshold))
        rows.append({"threshold": round(threshold, 4), **metrics})
    return rows
