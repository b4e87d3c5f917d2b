"""Operating the service: feedback and unanswered-question storage (``storage``), scrubbing
identifiers before anything is stored or logged (``privacy``), the review of what patients asked
(``review``), logging set-up (``logs``) and the Prometheus metrics registry (``metrics``).
"""
