"""Entry point: ``python -m local run --help``."""

import sys

from local.cli import main

sys.exit(main())
