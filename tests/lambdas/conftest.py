"""Handler tests share the core tests' builders (tests/core/pipeline_testlib.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
