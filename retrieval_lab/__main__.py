"""`python -m retrieval_lab ...` is `retrieval-lab ...`."""
import sys

from retrieval_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
