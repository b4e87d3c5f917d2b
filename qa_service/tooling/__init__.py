"""Developer and staff tooling, not on the request path: offline evaluation (``evaluation``) and
its report (``report``), the speed harness (``bench``), its load generator (``loadgen``) and the
search-at-scale measurements (``scale``).
"""
