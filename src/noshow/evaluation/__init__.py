"""Evaluation: metric definitions, the comparison protocol, its report, and the benchmarks."""
