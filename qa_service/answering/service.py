"""The running service: the engine being served, its reloads, the answer cache and micro-batcher, feedback storage.

Core, no HTTP: the API (``qa_service.api``) holds one ``ServiceState`` and calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Literal, TypeVar

from qa_service.answering.answerer import normalize_question
from qa_service.answering.batching import AnswerCache, MicroBatcher
from qa_service.answering.context import Turn
from qa_service.answering.decision import Decision
from qa_service.answering.engine import Engine, load_engine
from qa_service.answering.redflags import RedFlagRules, red_flags_from_settings
from qa_service.errors import (
    QaError,
    ReloadError,
    StorageError,
)
from qa_service.index.store import BUILDS_DIR, MANIFEST, current_build_id, list_builds, set_search_threads
from qa_service.model.embedder import Embedder
from qa_service.model.memory import HeapTrimmer, settle_heap
from qa_service.ops.metrics import Metrics
from qa_service.ops.privacy import default_deidentifier
from qa_service.ops.storage import FeedbackStore, UnansweredRecorder, feedback_store_from_settings
from qa_service.settings import Settings

T = TypeVar("T")
logger = logging.getLogger(__name__)

# faiss threads for the batcher's searches. One: a search of a batch takes microseconds to a few
# milliseconds, and a second OpenMP pool spinning beside torch's on two cores slowed it down (see
# docs/benchmarks.md); the other core is better left to the event loop.
SERVICE_SEARCH_THREADS = 1


class ServiceState:
    """What the running service holds: the engine once loaded, or why it is not ready."""

    def __init__(self, settings: Settings, embedder: Embedder, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.metrics = metrics or Metrics()
        self.engine: Engine | None = None
        self.red_flags: RedFlagRules | None = None
        self.not_ready_reason: str | None = "starting"
        self.store: FeedbackStore | None = None
        self.recorder: UnansweredRecorder | None = None
        self.store_error: str | None = None
        self.reload_error: str | None = None
        self.refused_build: str | None = None  # the last build id refused, not retried by the watcher
        # Set when the service started while CURRENT named a build it could not load and serves the
        # newest earlier build that loads instead; cleared once it serves the build CURRENT names.
        self.fallback: str | None = None
        self._reload_lock = threading.Lock()
        self.cache = AnswerCache(settings.cache_size)
        self.batcher = MicroBatcher(
            max_batch=settings.batch_max,
            window=settings.batch_window_ms / 1000,
            on_batch=self.metrics.batch_size.observe,
            after_batch=HeapTrimmer().maybe_trim,  # keeps resident memory flat under load
            on_start=lambda: set_search_threads(SERVICE_SEARCH_THREADS),
        )

    async def answer(
        self, engine: Engine, question: str, top_k: int, context: tuple[Turn, ...] | None = None
    ) -> Decision:
        """The decision for one question (with the conversation's previous turns, if any): from the
        cache, or batched with others asked meanwhile."""
        text = engine.answerer.clean(question)  # an invalid question fails here, never in a batch
        if context:  # cleaned like questions, so that the cache sees equal turns as equal
            context = tuple(Turn(normalize_question(turn.question), turn.answer_id) for turn in context)
        # the cleaned text: questions that differ only in Unicode form, invisible characters or
        # spacing share an entry
        key = (engine.index.manifest.build_id, text, top_k, context or None)
        cached = self.cache.get(key)
        self.metrics.cache.labels(result="miss" if cached is None else "hit").inc()
        if cached is not None:
            return cached
        decision = await asyncio.wrap_future(self.batcher.submit(engine.answerer, text, top_k, context or None))
        self.cache.put(key, decision)
        return decision

    def reload(self) -> bool:
        """Serve the build CURRENT names now, if it is new: load it fully, then swap.

        Requests in flight finish on the engine they started with; a build that fails to load is
        refused (ReloadError) and the previous engine keeps serving. Returns whether it swapped."""
        with self._reload_lock:
            try:
                build_id = current_build_id(self.settings.index_dir)
                if self.engine is not None and build_id == self.engine.index.manifest.build_id:
                    # e.g. rolled back to the build being served
                    self.reload_error = self.refused_build = self.fallback = None
                    self._report_serving()
                    return False
                red_flags = red_flags_from_settings(self.settings)
                engine = load_engine(self.settings, self.embedder, red_flags, build_id=build_id)
            except QaError as exc:
                self.metrics.reloads.labels(result="failure").inc()
                self.reload_error = exc.message
                self.refused_build = self._final_refusal(_pointer(self.settings.index_dir))
                logger.error("new index refused, the previous one keeps serving: %s", exc.message)
                raise ReloadError(f"new index refused, the previous one keeps serving: {exc.message}") from None
            self.red_flags, self.engine = red_flags, engine
            self.cache.clear()  # keyed by build, so never stale; cleared to free the old build's entries
            self.not_ready_reason = self.reload_error = self.refused_build = self.fallback = None
            self.metrics.reloads.labels(result="success").inc()
            self._report_serving()
            logger.info("now serving index build %s", engine.index.manifest.build_id)
            return True

    def _report_serving(self) -> None:
        if self.engine is not None:
            manifest = self.engine.index.manifest
            self.metrics.serving(
                manifest.build_id, manifest.model, manifest.entry_count, fallback=self.fallback is not None
            )

    def _final_refusal(self, build_id: str | None) -> str | None:
        """The refused build, for the watcher not to retry it; None (retry at the next poll) while the
        build's folder or manifest is not visible yet: on shared storage (NFS) another machine's
        published build can appear here a moment after the CURRENT that names it."""
        if build_id is None or not (self.settings.index_dir / BUILDS_DIR / build_id / MANIFEST).is_file():
            return None
        return build_id

    def published_build(self) -> str | None:
        """The build CURRENT names (None when it names none or cannot be read)."""
        return _pointer(self.settings.index_dir)

    def published_build_changed(self) -> bool:
        """Whether CURRENT names a build other than the one served (and not one already refused), or
        names the one served again (a rollback) while a refusal or fallback is still reported."""
        pointer = _pointer(self.settings.index_dir)
        served = self.engine.index.manifest.build_id if self.engine is not None else None
        if pointer is not None and pointer == served:
            return self.reload_error is not None or self.fallback is not None
        return pointer is not None and pointer != self.refused_build

    def load(self) -> None:
        try:
            # the emergency rules load first and on their own: red flags are answered even while the
            # index is unavailable, and nothing is answered without them
            self.red_flags = red_flags_from_settings(self.settings)
            try:
                self.engine = load_engine(self.settings, self.embedder, self.red_flags)
            except QaError as exc:
                self.engine = self._load_earlier_build(exc)
            self.not_ready_reason = None
            self._report_serving()
            settle_heap()
        except QaError as exc:
            self.engine = None
            self.not_ready_reason = exc.message
            logger.error("not ready: %s", exc.message)
        default_deidentifier().load()  # the name model, before the first feedback needs it (~0.7 s, once)
        try:
            self.store = feedback_store_from_settings(self.settings)
            self.recorder = UnansweredRecorder(self.store)
        except StorageError as exc:  # answering goes on; feedback and recording report the problem
            self.store_error = exc.message
            logger.error("feedback storage unavailable: %s", exc.message)

    def _load_earlier_build(self, refused: QaError) -> Engine:
        """At start-up, when the build CURRENT names cannot be loaded: the newest earlier build that
        loads (the one a rollback would choose), so that a replica restarted while a broken build is
        published serves the previous one instead of 503. Raises ``refused`` when none loads."""
        published = _pointer(self.settings.index_dir)
        earlier = [
            build for build in reversed(list_builds(self.settings.index_dir)) if published is None or build < published
        ]
        for build_id in earlier:
            try:
                engine = load_engine(self.settings, self.embedder, self.red_flags, build_id=build_id)
            except QaError as exc:
                logger.error("earlier build %s cannot be loaded either: %s", build_id, exc.message)
                continue
            self.reload_error = refused.message
            self.refused_build = self._final_refusal(published)
            self.fallback = (
                f"the published build {published or '(CURRENT unreadable)'} cannot be loaded; "
                f"serving {build_id}, the newest earlier build that loads, until a loadable build is published"
            )
            self.metrics.reloads.labels(result="failure").inc()
            logger.error("%s: %s", self.fallback, refused.message)
            return engine
        raise refused

    def close(self) -> None:
        self.batcher.close()
        if self.recorder is not None:
            self.recorder.close()  # what is queued is written before the store closes
        if self.store is not None:
            self.store.close()

    def record_unanswered(self, question: str, decision: Decision) -> None:
        """Queue a no_answer or clarify question for review when QA_RECORD_UNANSWERED is on (written
        by the recorder's thread, after the reply)."""
        if not self.settings.record_unanswered or decision.status not in ("no_answer", "clarify"):
            return
        if self.recorder is None:
            logger.warning("unanswered question not recorded: %s", self.store_error)
            return
        status: Literal["no_answer", "clarify"] = "clarify" if decision.status == "clarify" else "no_answer"
        self.recorder.record(question, status, [c.entry.id for c in decision.alternatives])


def _pointer(index_dir: Path) -> str | None:
    try:
        return current_build_id(index_dir)
    except QaError:
        return None


async def in_own_thread(function: Callable[[], T]) -> T:
    """``function()`` on a new thread that ends with it, awaited without blocking the event loop.

    For loading an engine: loading the model runs torch's OpenMP code, and a thread that has done so
    keeps an OpenMP team (and its helper threads) for as long as it lives. A pool thread lives on;
    with its team beside the batcher's on two cores, libgomp stops spinning between parallel regions
    and every encoder call got ~2x slower (measured: 5.4 -> 11.5 ms per question)."""
    result: Future[T] = Future()

    def run() -> None:
        try:
            result.set_result(function())
        except BaseException as exc:  # delivered to the awaiting coroutine
            result.set_exception(exc)

    threading.Thread(target=run, name="qa-loader", daemon=True).start()
    return await asyncio.wrap_future(result)


async def watch_index(state: ServiceState, every: float) -> None:
    """Pick up newly published builds: poll CURRENT (a tiny file) and reload off the event loop."""
    while True:
        await asyncio.sleep(every)
        try:
            if state.published_build_changed():
                with contextlib.suppress(ReloadError):  # logged, and reported by /readyz
                    await in_own_thread(state.reload)
        except Exception:  # a watcher that ends would leave the service on its old build for good
            logger.exception("checking for a new index build failed; trying again in %.1f s", every)
