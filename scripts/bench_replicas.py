"""Two replicas on one index folder behind nginx (see docs/benchmarks.md): python scripts/bench_replicas.py --help"""

import sys

from qa_service.tooling.replicas import main

sys.exit(main())
