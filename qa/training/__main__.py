"""python -m qa.training: train, calibrate, average or evaluate the neural reader."""

import sys

from qa.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
