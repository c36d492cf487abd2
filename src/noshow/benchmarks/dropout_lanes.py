"""The PyTorch twin's dropout lanes alone: one epoch's random bits for every hidden unit of every
batch, drawn as the twin draws them (:func:`noshow.nn.torch_mlp.random_lanes`), and nothing else.

Run in a fresh process by :func:`noshow.benchmarks.suite.torch_dropout_lanes_seconds`, since
PyTorch's thread pool would share that process with NumPy's BLAS; prints the best epoch's seconds
as JSON:

    python -m noshow.benchmarks.dropout_lanes --threads T --rows N --batch B --hidden 256,128 [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from noshow.allocator import keep_freed_memory
from noshow.nn.torch_mlp import random_lanes


def lanes_seconds(n_rows: int, batch: int, hidden: tuple[int, ...], epochs: int) -> float:
    """Best of ``epochs`` epochs' seconds to draw the lanes of ``hidden``'s units for every batch of
    ``batch`` rows (the last one partial) of ``n_rows`` rows, after a warm-up batch."""
    random_lanes((batch, hidden[0]))  # warm-up
    best = float("inf")
    for _ in range(epochs):
        started = time.perf_counter()
        for start in range(0, n_rows, batch):
            m = min(batch, n_rows - start)
            for width in hidden:
                random_lanes((m, width))
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--hidden", type=lambda text: tuple(int(w) for w in text.split(",")), required=True)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as in the twin's worker
    torch.set_num_threads(args.threads)
    print(json.dumps(lanes_seconds(args.rows, args.batch, args.hidden, args.epochs)))


if __name__ == "__main__":
    main()
