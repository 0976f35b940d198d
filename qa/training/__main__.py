"""python -m qa.training: train, calibrate, average or evaluate the neural reader."""

import sys

from qa.training.train import main

if __name__ == "__main__":
    sys.exit(main())
