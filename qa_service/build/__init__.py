"""Building an index from the corpus.

Owns the build pipeline: which texts are embedded, the off-topic and uncovered-topic calibration,
near-duplicates, one build at a time, staleness (``pipeline``: ``build_index``, ``prepare_build``,
``index_is_current``), and the fine-tune policy: training pairs and plan, how hard to train, when a
served build's model is reused (``finetune``). The training loop itself is the model's
(``qa_service.model.embedder``).
"""
