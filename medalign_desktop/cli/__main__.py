import sys

from medalign_desktop.cli import main

sys.exit(main())
