"""Evaluation: the comparison protocol, the rolling origin and its report. The metric definitions
are in :mod:`noshow.stats.metrics`; speed and memory are measured by :mod:`noshow.benchmarks`."""
