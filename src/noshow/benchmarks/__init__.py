"""Benchmarks: what measures speed and memory, apart from what is measured.

- :mod:`noshow.benchmarks.suite`: ``noshow bench``, the twins' seconds per epoch against the BLAS
  floor, their memory, ``noshow compare`` end to end; ``bench.json`` and its figure.
- :mod:`noshow.benchmarks.dropout_lanes`: the PyTorch twin's dropout bits alone, in a fresh process.
- :mod:`noshow.benchmarks.scale`: writing, streamed training and scoring of synthetic data of
  growing size (``noshow bench --scale``), each job in a fresh process.
- :mod:`noshow.benchmarks.scale_out`: one data-parallel measurement under ``mpiexec`` or
  ``torchrun`` (``bench/scale-out``).

Only the command line imports this package; importing it imports nothing else.
"""
