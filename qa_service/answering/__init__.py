"""Answering a question: pure Python over a loaded index and model, no HTTP.

``answerer`` (normalise, red flags, language, rank, coverage, decide: ``Answerer``), ``decision``
(``decide``: answered, clarify, no_answer or urgent), ``retrieval`` (dense and keyword candidates,
fused), ``calibration`` (the confidence model), ``coverage`` (whether the FAQ covers a question at
all), ``redflags`` (emergencies first), ``language``, ``batching`` (micro-batches and the answer
cache), ``engine`` (settings -> model + index -> answerer) and ``service`` (the running service's
state: reloads, watcher, cache, feedback storage). The API, the CLI and the tooling call in here.
"""
