"""Clinic FAQ answering service: curated answers with their sources, an honest "I don't know", and
safe escalation.

The package is laid out by concern: ``corpus`` (what the FAQ says), ``index`` (the search index),
``model`` (the embedding model), ``build`` (corpus -> published index), ``answering`` (a question ->
a decision; the running service's state), ``api`` (HTTP), ``ops`` (storage, privacy, logs, metrics)
and ``tooling`` (evaluation and benchmarks). ``settings`` and ``errors`` are shared by all; ``cli``
is the ``qa-service`` command. The core never imports ``api``, ``tooling`` or ``cli``.
"""

__version__ = "0.1.0"
