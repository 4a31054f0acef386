"""Entry point: ``python -m local run --help``."""

import sys

from local.cli.main import main

sys.exit(main())
