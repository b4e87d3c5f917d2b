import sys

from qa_service.cli import main

sys.exit(main(["build", *sys.argv[1:]]))
