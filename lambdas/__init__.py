"""Thin Lambda handlers over :mod:`pipeline_core`, one module per state."""
