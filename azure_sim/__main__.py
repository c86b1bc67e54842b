"""``python -m azure_sim``: serve the simulator in the foreground until SIGINT/SIGTERM."""

import sys

from .cli import main

sys.exit(main())
