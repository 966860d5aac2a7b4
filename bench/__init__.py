"""Benchmarks: `python -m bench.NAME` prints figures (never asserted in tests)."""
