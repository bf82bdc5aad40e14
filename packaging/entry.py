"""The bundle's entry script: the GUI, or a training program with ``--run-training`` (see app.py)."""

import multiprocessing
import sys

from medalign_desktop.app import main

if __name__ == "__main__":
    # A frozen app that starts worker processes (datasets, torch data loaders) must answer their
    # bootstrap itself on Windows and macOS, or each worker would start another copy of the app.
    multiprocessing.freeze_support()
    sys.exit(main())
