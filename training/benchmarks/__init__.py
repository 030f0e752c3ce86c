"""Benchmark harnesses on real data sets, run through pvcast's own pipeline (``pvcast benchmark ...``)."""
