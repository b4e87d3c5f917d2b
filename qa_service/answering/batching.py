"""The request path's two speed-ups: micro-batching and an answer cache. Core, no HTTP.

Questions asked at the same time are answered with one encoder call: a single worker thread takes
every question waiting in its queue (up to ``max_batch``) and answers them together, which costs
far less per question than one call each. A lone question is answered at once (no added wait); the
worker waits up to ``window`` seconds for more only while the previous batch had company, i.e.
while the service is busy. One worker also means one thread running the model, instead of one per
request thread competing for the same cores.

Repeated questions (after normalisation) are answered from a bounded LRU cache keyed by the index
build, so a new build never serves an old decision.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass

from qa_service.answering.answerer import Answerer
from qa_service.answering.context import Turn
from qa_service.answering.decision import Decision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    answerer: Answerer  # the engine's answerer when the question arrived: a swap mid-queue changes nothing
    question: str
    top_k: int
    future: Future[Decision]
    context: tuple[Turn, ...] | None = None


class MicroBatcher:
    """Answers questions submitted from any thread in batches, on one worker thread."""

    def __init__(
        self,
        *,
        max_batch: int = 32,
        window: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
        after_batch: Callable[[], object] | None = None,
        on_start: Callable[[], object] | None = None,
        name: str = "qa-batcher",
    ) -> None:
        """Hooks run on the worker thread: ``on_start()`` once, first (per-thread settings such as
        faiss's thread count); ``on_batch(size)`` before each batch is answered; ``after_batch()``
        after it (e.g. handing the encoder's freed memory back, see qa_service.model.memory)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.window = window
        self._on_batch = on_batch
        self._after_batch = after_batch
        self._on_start = on_start
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, answerer: Answerer, question: str, top_k: int, context: tuple[Turn, ...] | None = None
    ) -> Future[Decision]:
        """Queue a question already through ``answerer.clean`` (with the conversation's previous
        turns, if any); the future holds its decision (or the error answering it raised)."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        future: Future[Decision] = Future()
        self._queue.put(_Job(answerer, question, top_k, future, context))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start()
            except Exception:  # a tuning hook must never stop the worker
                logger.exception("batcher start hook failed")
        previous = 1
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first, wait=self.window if previous > 1 else 0.0)
            previous = len(batch)
            self._answer(batch)
            if self._after_batch is not None:
                try:
                    self._after_batch()
                except Exception:  # housekeeping must never stop the worker
                    logger.exception("after-batch hook failed")
            if stop:
                return

    def _collect(self, first: _Job, *, wait: float) -> tuple[list[_Job], bool]:
        batch = [first]
        deadline = time.monotonic() + wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _answer(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]  # drop abandoned requests
        if self._on_batch is not None and live:
            self._on_batch(len(live))
        groups: dict[int, list[_Job]] = {}
        for job in live:  # almost always one group; two only while an index swap is under way
            groups.setdefault(id(job.answerer), []).append(job)
        for jobs in groups.values():
            try:
                decisions = jobs[0].answerer.answer_cleaned(
                    [job.question for job in jobs], [job.top_k for job in jobs], [job.context for job in jobs]
                )
            except Exception as exc:  # one bad question must not fail the others
                if len(jobs) == 1:
                    jobs[0].future.set_exception(exc)
                else:
                    self._answer_singly(jobs)
                continue
            for job, decision in zip(jobs, decisions, strict=True):
                job.future.set_result(decision)

    @staticmethod
    def _answer_singly(jobs: list[_Job]) -> None:
        for job in jobs:
            try:
                job.future.set_result(job.answerer.answer_cleaned([job.question], [job.top_k], [job.context])[0])
            except Exception as exc:  # reported to the one request that caused it
                job.future.set_exception(exc)


class AnswerCache:
    """A bounded, thread-safe LRU of decisions. Keys include the index build, so entries of an old
    build are never served; ``clear()`` frees them when a new build is swapped in."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Decision] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Decision | None:
        if self.size <= 0:
            return None
        with self._lock:
            decision = self._items.get(key)
            if decision is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return decision

    def put(self, key: Hashable, decision: Decision) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = decision
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
