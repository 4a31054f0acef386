"""Benchmarks (``make bench``): each measure against a baseline in the same run."""
