"""python -m qa.train_reader: the documented name of ``python -m qa.training``."""

import sys

from qa.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
