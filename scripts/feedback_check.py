"""Feedback durability with replicas on one PostgreSQL store (see qa_service/tooling/feedback_check.py)."""

import sys

from qa_service.tooling.feedback_check import main

if __name__ == "__main__":
    sys.exit(main())
