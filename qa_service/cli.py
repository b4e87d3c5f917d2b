"""The ``qa-service`` command line. Every command is ``main([...]) -> exit code`` (tests call it so).

Exit codes: 0 success, 1 a problem with the data or the index (the message names the file and line),
2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from qa_service import __version__
from qa_service.errors import QaError
from qa_service.ops.logs import configure_logging
from qa_service.settings import Settings

logger = logging.getLogger("qa_service")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "corpus_dir": getattr(args, "corpus_dir", None),
            "index_dir": getattr(args, "index_dir", None),
            "model": getattr(args, "model", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "red_flags_file": getattr(args, "rules", None),
        }.items()
        if value is not None
    }
    return Settings(**overrides)


def _reference_date(text: str) -> date:
    from qa_service.corpus.importers.dates import parse_reference_date

    try:
        return parse_reference_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.corpus.importers import import_into_corpus
    from qa_service.corpus.importers.report import render_import_report

    summary = import_into_corpus(
        args.source,
        settings.corpus_dir,
        name=args.name,
        fmt=args.format,
        force=args.force,
        dry_run=args.dry_run,
        as_of=args.as_of,
    )
    print("\n".join(render_import_report(summary, dry_run=args.dry_run)))
    return 0


def _cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.build.pipeline import corpus_vocabulary, served_entries
    from qa_service.corpus.entries import corpus_files, load_corpus
    from qa_service.corpus.synonyms import SYNONYMS_FILE, load_synonyms

    corpus = load_corpus(settings.corpus_dir)
    files = corpus_files(settings.corpus_dir)
    synonyms = load_synonyms(settings.corpus_dir)
    flagged = sum(1 for entry in corpus.entries if entry.flags)
    print(f"{settings.corpus_dir}: {len(corpus.entries)} entries in {len(files)} file(s) are valid; {flagged} flagged")
    if synonyms:
        words = sum(len(variants) for variants in synonyms.terms.values())
        print(f"{SYNONYMS_FILE}: {len(synonyms.terms)} terms with {words} patient words are valid")
    served, _ = served_entries(corpus.entries, settings.exclude_flags)
    added = {
        term: words[len(synonyms.terms.get(term, ())) :]
        for term, words in corpus_vocabulary(synonyms, served, settings).terms.items()
        if len(words) > len(synonyms.terms.get(term, ()))
    }
    if added:
        listed = "; ".join(f"{term}: {', '.join(words)}" for term, words in added.items())
        print(f"built-in lay words read as this corpus's terms (QA_LAY_WORDS): {listed}")
    return 0


def _cmd_redflags(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.answering.redflags import red_flags_from_settings
    from qa_service.tooling.evaluation import load_queries

    rules = red_flags_from_settings(settings)
    print(
        f"{rules.source}: {len(rules.rules)} red-flag rules and {len(rules.notes)} note rules are valid "
        "and fire on all their examples"
    )
    for text in args.check:
        flag = rules.check(text)
        print(f"  {'URGENT ' + flag.rule if flag else 'no red flag'}: {text}")
    for path in args.queries:
        questions = [query.query for query in load_queries(path)]  # checked line by line, as eval checks them
        fired = [(question, flag) for question in questions if (flag := rules.check(question)) is not None]
        share = len(fired) / len(questions) if questions else 0.0
        print(f"{path}: {len(fired)} of {len(questions)} escalated ({share:.1%})")
        for question, flag in fired:
            print(f"  {flag.rule}: {' '.join(question.split())[:200]}")
    return 0


def _cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.answering.engine import load_engine
    from qa_service.corpus.entries import write_text_atomically
    from qa_service.ops.review import build_review, render_markdown
    from qa_service.ops.storage import feedback_store_from_settings

    _check_output(args.out)
    if isinstance(settings.feedback_db, Path) and not settings.feedback_db.exists():
        print(f"qa-service: error: {settings.feedback_db}: no feedback database yet", file=sys.stderr)
        return 1
    store = feedback_store_from_settings(settings)
    try:
        report = render_markdown(
            build_review(store, load_engine(settings), similarity=args.similarity, min_confidence=args.min_confidence),
            retention_days=settings.retention_days,
        )
    finally:
        store.close()
    print(report, end="")
    write_text_atomically(args.out, report)
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.ops.storage import feedback_store_from_settings

    store = feedback_store_from_settings(settings)  # opening a store applies what is missing
    store.close()
    result = store.migration
    if result.applied:
        done = ", ".join(str(version) for version in result.applied)
        print(f"{store.name}: feedback schema migrated from version {result.before} to {result.after} (applied {done})")
    else:
        print(f"{store.name}: feedback schema is up to date (version {result.after})")
    return 0


def _cmd_builds(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.index.store import BUILDS_DIR, list_builds, read_manifest

    current = _current_or_none(settings)
    builds = list_builds(settings.index_dir)
    if not builds:
        print(f"{settings.index_dir}: no builds")
        return 0
    unreadable = 0
    for build_id in builds:
        marker = "*" if build_id == current else " "
        try:
            manifest = read_manifest(settings.index_dir / BUILDS_DIR / build_id)
        except QaError as exc:  # listed all the same: the others are what a rollback can choose from
            unreadable += 1
            print(f"{marker} {build_id}  unreadable: {exc.message}")
            continue
        tuned = ", fine-tuned" if manifest.fine_tune else ""
        print(f"{marker} {build_id}  {manifest.entry_count} entries, {manifest.model}{tuned}")
    return 1 if unreadable else 0


def _cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.index.store import list_builds, load_index, set_current_build
    from qa_service.model.embedder import canonical_model_name

    current = _current_or_none(settings)
    builds = list_builds(settings.index_dir)
    if args.to is not None:
        target = args.to
    else:
        older = [b for b in builds if current is None or b < current]
        if not older:
            print(
                f"qa-service: error: {settings.index_dir}: no build older than {current} to roll back to",
                file=sys.stderr,
            )
            return 1
        target = older[-1]
    if target not in builds:
        print(
            f"qa-service: error: {settings.index_dir}: no build {target!r} (see `qa-service builds`)", file=sys.stderr
        )
        return 1
    # refuse a broken or mismatched build
    load_index(settings.index_dir, model=canonical_model_name(settings.model), build_id=target)
    set_current_build(settings.index_dir, target)
    was = current or "no readable build"
    print(f"{settings.index_dir}: now serving {target} (was {was}); a running server picks it up")
    return 0


def _check_output(path: Path | None, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written (QaError naming it); missing folders are made."""
    if path is None:
        return
    if folder and path.exists() and not path.is_dir():
        raise QaError(f"{path}: exists and is not a folder")
    if not folder and path.is_dir():
        raise QaError(f"{path}: is a folder; name a file to write")
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise QaError(f"{path}: cannot be written ({existing} is not a writable folder)")


def _current_or_none(settings: Settings) -> str | None:
    from qa_service.index.store import current_build_id

    try:
        return current_build_id(settings.index_dir)
    except QaError:
        return None


def _cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.build.pipeline import build_index, index_is_current
    from qa_service.model.embedder import embedder_from_settings

    embedder = embedder_from_settings(settings)  # not loaded yet
    if args.if_stale:
        reason = index_is_current(settings, embedder)
        if reason is None:
            print(f"index in {settings.index_dir} is up to date with {settings.corpus_dir}; nothing to build")
            return 0
        print(f"building: {reason}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    manifest = build_index(settings, embedder, progress=progress, retrain=args.retrain)
    print(
        f"built index {manifest.build_id} in {settings.index_dir}: {manifest.entry_count} entries, "
        f"{manifest.vector_count} vectors, model {manifest.model}, {manifest.build_seconds:.1f}s"
    )
    if manifest.excluded_ids:
        flags = ", ".join(settings.exclude_flags)
        print(f"left out (flagged {flags}): {', '.join(manifest.excluded_ids)}")
    if manifest.fine_tune and manifest.fine_tune.get("reused_from"):
        tune = manifest.fine_tune
        print(
            f"fine-tuned model reused from build {tune['reused_from']} "
            f"({tune['changed_since_training']:.1%} of entries changed since it was trained; --retrain to train again)"
        )
    elif manifest.fine_tune:
        tune = manifest.fine_tune
        print(f"model fine-tuned on the corpus: {tune['pairs']} pairs, {tune['steps']} steps, {tune['seconds']:.0f}s")
    if manifest.near_duplicate_pairs:
        report = settings.index_dir / "builds" / manifest.build_id / "near_duplicates.json"
        print(
            f"{manifest.near_duplicate_pairs} pairs of entries ask the same question; "
            f"{manifest.near_duplicates_differing} of them give different answers (review them): {report}"
        )
        for pair in json.loads(report.read_text(encoding="utf-8"))[:20]:
            if pair["answers_differ"]:
                print(
                    f"  review: {pair['first']} ~ {pair['second']} (question similarity {pair['question_similarity']})"
                )
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``qa-service serve`` runs uvicorn (tests serve their own app with the same options)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # uvicorn's loggers go through the handler configured in main (text or JSON)
        "access_log": settings.access_log,
        # the client address of rate limits and logs: X-Forwarded-For, from the trusted proxies only
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from qa_service.api.app import create_app

    uvicorn.run(create_app(settings), **uvicorn_options(settings))
    return 0


def _print_decision(payload: dict[str, object]) -> None:
    status = payload["status"]
    print(f"[{status}] {payload['message']}")
    if payload.get("note"):
        print(f"Note: {payload['note']}")
    answer = payload.get("answer")
    if isinstance(answer, dict):
        print(f"\nQ: {answer['question']}  (id {answer['id']}, score {answer['score']:.3f})\n")
        print(answer["answer"])
        source = answer["source"]
        parts = [source.get(key) for key in ("title", "publisher", "author", "published", "url")]
        line = ", ".join(str(part) for part in parts if part)
        if source.get("quotes"):
            line += f"; quotes {', '.join(source['quotes'])}"
        print(f"\nSource: {line or 'not recorded'}")
    alternatives = payload.get("alternatives") or []
    if alternatives:
        print("\nSee also:" if status == "answered" else "")
        for alt in alternatives:  # type: ignore[attr-defined]
            print(f"  - {alt['question']}  (id {alt['id']}, score {alt['score']:.3f})")
    if payload.get("disclaimer"):
        print(f"\n{payload['disclaimer']}")


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.answering.engine import load_engine
    from qa_service.api.schemas import AskResponse
    from qa_service.errors import InvalidQuestionError

    try:  # a command line's bytes that are not UTF-8 arrive as half characters (HTTP refuses them itself)
        args.question.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidQuestionError(
            f"question is not valid text (it holds {exc.object[exc.start]!r} at {exc.start})"
        ) from None
    engine = load_engine(settings)
    decision = engine.answerer.ask(args.question, args.top_k or settings.default_top_k)
    response = AskResponse.from_decision(decision)
    if args.json:
        print(response.model_dump_json(indent=2))
    else:
        _print_decision(response.model_dump(mode="json"))
    if args.explain:
        from qa_service.answering.coverage import explain

        if decision.coverage is None:
            lines = [f"coverage: not judged (a {decision.status} reply is decided before the coverage check)"]
        else:
            lines = explain(decision.coverage, engine.answerer.policy.coverage)
        print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.answering.engine import policy_from_settings
    from qa_service.corpus.entries import write_text_atomically
    from qa_service.model.embedder import embedder_from_settings
    from qa_service.tooling.evaluation import feature_rows, headline, run_evaluation, score_run, sweep
    from qa_service.tooling.report import write_report

    _check_output(args.features)  # before minutes of work, not after
    _check_output(args.report, folder=True)
    run = run_evaluation(
        args.faq,
        args.queries,
        embedder_from_settings(settings),
        settings,
        noanswer_path=args.noanswer,
        progress=sys.stderr.isatty(),
        keep_reference=args.features is not None,
    )
    policy = policy_from_settings(settings)
    metrics = headline(score_run(run, policy, settings.default_top_k))
    if args.features:
        write_text_atomically(args.features, "".join(json.dumps(row) + "\n" for row in feature_rows(run)))
    rows = sweep(run, policy, [step / 50 for step in range(51)])
    if args.report:
        write_report(
            args.report,
            title=f"Evaluation of {args.faq.name if args.faq.is_file() else args.faq}",
            description=(
                f"FAQ `{args.faq}` ({run.entry_count} entries), {len(run.answerable)} answerable questions from "
                f"`{args.queries}`"
                + (
                    f", {len(run.noanswer_rankings or [])} no-answer questions from `{args.noanswer}`"
                    if args.noanswer
                    else ""
                )
                + f"; model {settings.model}, threshold {policy.answer_threshold}."
            ),
            metrics=metrics,
            rows=rows,
            threshold=policy.answer_threshold,
        )
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(
        f"{args.faq}: {run.entry_count} entries; {len(run.answerable)} answerable queries"
        + (f", {len(run.noanswer_rankings or [])} no-answer queries" if args.noanswer else "")
    )
    print(f"threshold {policy.answer_threshold}, clarify margin {policy.clarify_margin}")
    for key, value in metrics.items():
        print(f"  {key:<20} {value:.4f}")
    if args.report:
        print(f"report: {args.report / 'report.md'}")
    if args.sweep:
        keys = ["threshold", *metrics]
        print("\n" + "  ".join(f"{key:>10}" for key in keys))
        for row in rows:
            print("  ".join(f"{row[key]:>10.4f}" for key in keys))
    return 0


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.tooling import bench

    _check_output(args.out)
    if args.conversations is not None:
        context = bench.run_context_bench(settings, args.conversations, rounds=args.rounds)
        return _report_bench(args, context, bench.render_context)
    if args.feedback is not None:
        reasons = bench.load_reasons(args.feedback)
        feedback = bench.run_feedback_bench(settings, reasons, compare_with=args.compare_with, rounds=args.rounds)
        return _report_bench(args, feedback, bench.render_feedback)
    if not args.questions:
        print("qa-service: error: bench needs --questions (or --feedback)", file=sys.stderr)
        return 2
    results = bench.run_bench(
        settings,
        args.questions,
        quick=args.quick,
        build_faq=args.build_faq,
        build_rate_entries=args.build_rate_entries,
        scale_dataset=args.scale_dataset,
        scale_rows=args.scale_rows,
        load=args.load,
        concurrency=args.concurrency,
    )
    return _report_bench(args, results, bench.render)


def _report_bench(args: argparse.Namespace, results: Any, render: Callable[[Any], str]) -> int:
    """A bench's results: as JSON to ``--out``, and printed as a table (or JSON with ``--json``)."""
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results) if args.json else render(results))
    return 0


def _cmd_deid_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.tooling import deid_eval

    return deid_eval.run_command(args)


def _cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from qa_service.answering.calibration import FEATURES, examples_from_files, fit_confidence, threshold_table

    examples = examples_from_files(args.features)
    if not examples:
        print("qa-service: error: no examples in the feature files", file=sys.stderr)
        return 1
    coefficients = fit_confidence(examples)
    print("coefficients (bias, " + ", ".join(FEATURES) + "):")
    print("  " + repr(coefficients))
    print("\nper dataset and threshold: answerable questions answered right / no-answer questions declined")
    for dataset, cells in threshold_table(coefficients, examples, (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)).items():
        shown = [f"{t}: {right:.3f}" + ("" if declined is None else f"/{declined:.3f}") for t, right, declined in cells]
        print(f"  {dataset:<12} " + "  ".join(shown))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa-service", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"qa-service {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text)

    def corpus_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--corpus-dir", type=Path, help="corpus folder (default: QA_CORPUS_DIR or ./corpus)")

    def index_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--index-dir", type=Path, help="index folder (default: QA_INDEX_DIR or ./index)")
        command.add_argument("--model", help="embedding model name or path (default: QA_MODEL)")

    command = add(
        "import", "Import an FAQ page (HTML, Markdown, Word, scraped text), CSV or JSONL file into the corpus."
    )
    command.add_argument("source", type=Path, help="file to import (.html, .md, .docx, .txt page, .csv, .jsonl)")
    command.add_argument(
        "--format",
        choices=["auto", "html", "markdown", "docx", "text", "page", "csv", "jsonl"],
        default="auto",
        help="how to read the file (default: by its suffix; 'text' (or 'page') is a scraped text page)",
    )
    command.add_argument("--name", help="corpus file name without .yaml (default: the source's name)")
    command.add_argument(
        "--dry-run", action="store_true", help="show what would be imported and skipped; write nothing"
    )
    command.add_argument(
        "--force",
        action="store_true",
        help="on re-import, take the page's version of conflicting entries; replace a corpus file of that "
        "name that was not imported from this source",
    )
    command.add_argument(
        "--as-of",
        type=_reference_date,
        metavar="DATE",
        help="the day the page was saved, to resolve relative dates such as '2 years ago' (e.g. 2024-05-01)",
    )
    corpus_options(command)
    command.set_defaults(handler=_cmd_import)

    command = add("validate", "Check the corpus files and report errors with file and line.")
    corpus_options(command)
    command.set_defaults(handler=_cmd_validate)

    command = add("builds", "List the index builds on disk; * marks the one being served.")
    index_options(command)
    command.set_defaults(handler=_cmd_builds)

    command = add("rollback", "Serve an earlier index build again (by default the one before the current).")
    command.add_argument("--to", metavar="BUILD_ID", help="the build to serve (default: the previous one)")
    index_options(command)
    command.set_defaults(handler=_cmd_rollback)

    command = add("review", "Report unanswered questions by group, suggested alternates and unhelpful answers.")
    command.add_argument("--out", type=Path, default=Path("review.md"), help="report file (default: review.md)")
    command.add_argument(
        "--similarity", type=float, default=0.75, help="cosine above which questions are grouped (default: 0.75)"
    )
    command.add_argument(
        "--min-confidence",
        type=float,
        default=0.05,
        help="suggest the closest entry only when its confidence reaches this (default: 0.05)",
    )
    index_options(command)
    command.set_defaults(handler=_cmd_review)

    command = add("migrate", "Create or upgrade the feedback database's schema (QA_FEEDBACK_DB: SQLite or PostgreSQL).")
    command.set_defaults(handler=_cmd_migrate)

    command = add("redflags", "Check the red-flag rules file, and which messages it escalates.")
    command.add_argument("--rules", type=Path, help="rules file (default: QA_RED_FLAGS_FILE or the bundled rules)")
    command.add_argument("--check", nargs="+", default=[], metavar="TEXT", help="messages to test against the rules")
    command.add_argument(
        "--queries", nargs="+", type=Path, default=[], metavar="FILE", help="JSONL files of {query}: escalation rates"
    )
    command.set_defaults(handler=_cmd_redflags)

    command = add("build", "Embed the corpus and publish a new index build atomically.")
    corpus_options(command)
    index_options(command)
    command.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    command.add_argument(
        "--retrain",
        action="store_true",
        help="fine-tune the model again even if the served build's fine-tuned model could be reused",
    )
    command.add_argument(
        "--if-stale",
        action="store_true",
        help="build only when there is no index, or the corpus or model changed since",
    )
    command.set_defaults(handler=_cmd_build)

    command = add("serve", "Run the HTTP API.")
    command.add_argument("--host", help="address to bind (default: QA_HOST or 127.0.0.1)")
    command.add_argument("--port", type=int, help="port (default: QA_PORT or 8000)")
    index_options(command)
    command.set_defaults(handler=_cmd_serve)

    command = add("ask", "Answer one question in-process and print the API's reply.")
    command.add_argument("question")
    command.add_argument("--json", action="store_true", help="print the exact JSON the API returns")
    command.add_argument("--top-k", type=int, choices=range(1, 21), metavar="N", help="alternatives to return (1-20)")
    command.add_argument(
        "--explain",
        action="store_true",
        help="also print how the coverage check judged the question (stderr with --json)",
    )
    index_options(command)
    command.set_defaults(handler=_cmd_ask)

    command = add("eval", "Measure answer quality on a labelled dataset.")
    command.add_argument(
        "--faq",
        type=Path,
        required=True,
        help="FAQ JSONL (id, question, answer, source), or a corpus folder / YAML file",
    )
    command.add_argument("--queries", type=Path, required=True, help="queries JSONL: query, relevant ids")
    command.add_argument("--noanswer", type=Path, help="queries the FAQ does not answer (relevant: [])")
    command.add_argument("--json", action="store_true", help="print one JSON object of the metrics")
    command.add_argument("--sweep", action="store_true", help="also print the metrics as the threshold moves")
    command.add_argument("--features", type=Path, help="write each query's top candidates and scores (JSONL)")
    command.add_argument(
        "--report",
        type=Path,
        default=Path("eval-report"),
        help="folder for report.md and tradeoff.svg (default: ./eval-report)",
    )
    command.add_argument("--no-report", dest="report", action="store_const", const=None, help="write no report")
    command.add_argument("--model", help="embedding model name or path (default: QA_MODEL)")
    command.set_defaults(handler=_cmd_eval)

    command = add("calibrate", "Fit the confidence model's coefficients from `eval --features` files.")
    command.add_argument("--features", type=Path, nargs="+", required=True, help="feature files, one per dataset")
    command.set_defaults(handler=_cmd_calibrate)

    command = add(
        "deid-eval", "Measure de-identification on the labelled sentences (recall per type, medical words kept)."
    )
    from qa_service.tooling import deid_eval

    deid_eval.add_arguments(command)
    command.set_defaults(handler=_cmd_deid_eval)

    command = add("bench", "Measure speed: in-process floor, HTTP at concurrency 1/8/32, cache, builds, scale.")
    command.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        help="JSONL files with a 'query' field (distinct questions are used; the full run needs 900+)",
    )
    command.add_argument(
        "--feedback",
        type=Path,
        metavar="FILE",
        help="instead, time POST /v1/feedback at c=1 with each line's 'text' as the reason (e.g. "
        "tests/data/deid/sentences.jsonl)",
    )
    command.add_argument(
        "--compare-with",
        type=Path,
        metavar="DIR",
        help="with --feedback: also serve the code of this checkout (e.g. a git worktree of main), asked in turn",
    )
    command.add_argument(
        "--conversations",
        type=Path,
        metavar="FILE",
        help="instead, time POST /v1/ask at c=1 with and without each conversation's earlier turns, in turn "
        "(e.g. tests/data/conversations/conversations.jsonl)",
    )
    command.add_argument(
        "--rounds", type=int, default=3, help="with --feedback or --conversations: times each request is sent (3)"
    )
    command.add_argument("--quick", action="store_true", help="a smoke run that checks the harness works (seconds)")
    command.add_argument(
        "--build-faq",
        type=Path,
        help="also measure build rate and a one-edit rebuild on this faq.jsonl (or corpus folder)",
    )
    command.add_argument(
        "--build-rate-entries",
        type=int,
        default=2000,
        help="entries with answers of --build-faq for the build-rate comparison (default 2000; 0: all); the rebuild "
        "uses all of them, in a folder kept between runs (the first run makes the full build there once)",
    )
    command.add_argument(
        "--scale-dataset",
        type=Path,
        help="also measure search at scale: a dataset folder (faq.jsonl: the real index) and a synthetic 1M index",
    )
    command.add_argument("--scale-rows", type=int, default=None, help="synthetic rows (default 1,000,000)")
    command.add_argument(
        "--load", type=int, default=0, metavar="N", help="also send N requests (cycling the questions) after a warm-up"
    )
    command.add_argument("--concurrency", type=int, default=64, help="concurrent requests of --load (default 64)")
    command.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    command.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    index_options(command)
    command.set_defaults(handler=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        errors = "; ".join(f"QA_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors() if e["loc"])
        print(f"qa-service: error: invalid setting: {errors}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a list or other JSON setting that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"QA_{field[1].upper()}" if field else "a setting"
        print(
            f"qa-service: error: invalid setting: {name}: not valid JSON ({exc.__cause__}); "
            f"a list is written like '[\"advert\"]'",
            file=sys.stderr,
        )
        return 2
    except UnicodeDecodeError as exc:  # the .env file
        print(
            f"qa-service: error: invalid settings file .env: not UTF-8 text ({exc.reason} at byte {exc.start})",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        code: int = args.handler(args, settings)
    except QaError as exc:
        print(f"qa-service: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa-service: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qa-service ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush stays quiet
        return 141
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
