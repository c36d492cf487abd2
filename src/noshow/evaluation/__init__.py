"""Evaluation: the comparison protocol, the rolling origin, its report, and the benchmarks. The
metric definitions are in :mod:`noshow.stats.metrics`."""
