"""moto 5.2.5's cloudwatch service, corrected where AWS answers differently."""

from __future__ import annotations


def install() -> None:
    """Apply this module's fixes (idempotent)."""
