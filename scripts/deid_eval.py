import sys

from qa_service.tooling.deid_eval import main

sys.exit(main(sys.argv[1:]))
