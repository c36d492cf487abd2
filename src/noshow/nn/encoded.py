"""A compact feature matrix: dense columns plus one-hot columns stored as integer codes.

Most of the network's input columns are one-hot (categories and bins), so storing them as floats
wastes memory: 110,527 rows x 160 columns is 71 MB in float32. :class:`Encoded` keeps the dense part
as floats and each one-hot group as one small integer per row (the absolute column of its 1), about
5 MB, and expands rows to the dense matrix only for the rows in hand (a mini-batch). It needs only
NumPy, so a training process can use it without importing the data libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Encoded:
    """Rows of a feature matrix of ``width`` columns.

    ``dense``: (n, n_dense) floats, the first n_dense columns. ``hot``: (n, n_groups) integers, for
    each one-hot group the absolute column (>= n_dense) that holds a 1.
    """

    dense: np.ndarray
    hot: np.ndarray
    width: int

    def __len__(self) -> int:
        return len(self.dense)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.width)

    def rows(self, index, dtype=np.float32) -> np.ndarray:
        """The dense matrix (len(index), width) of the selected rows (an index array or a slice)."""
        dense, hot = self.dense[index], self.hot[index]
        out = np.zeros((len(dense), self.width), dtype=dtype)
        out[:, : dense.shape[1]] = dense
        out[np.arange(len(hot))[:, None], hot] = 1
        return out

    def to_array(self, dtype=np.float32) -> np.ndarray:
        return self.rows(slice(None), dtype)

    def subset(self, index) -> "Encoded":
        return Encoded(self.dense[index], self.hot[index], self.width)

    def save(self, prefix: str | Path) -> None:
        """Write ``<prefix>.dense.npy`` and ``<prefix>.hot.npy`` (plain arrays, no pickle)."""
        np.save(f"{prefix}.dense.npy", self.dense, allow_pickle=False)
        np.save(f"{prefix}.hot.npy", self.hot, allow_pickle=False)

    @classmethod
    def load(cls, prefix: str | Path, width: int) -> "Encoded":
        return cls(np.load(f"{prefix}.dense.npy", allow_pickle=False),
                   np.load(f"{prefix}.hot.npy", allow_pickle=False), width)


def take_rows(X, index, dtype) -> np.ndarray:
    """Dense rows of ``X`` (an ndarray or :class:`Encoded`) in ``dtype``."""
    if isinstance(X, Encoded):
        return X.rows(index, dtype)
    return np.asarray(X[index], dtype=dtype)


def chunks(n: int, size: int = 2048):
    """Slices covering range(n) in pieces of at most ``size`` rows (bounds memory when predicting)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@dataclass(frozen=True)
class ChunkStore:
    """Rows of a feature matrix stored on disk as chunks (``Encoded.save`` files plus labels), for
    data larger than memory: training reads one chunk at a time, never all rows.

    ``prefixes`` name the chunks; each has ``<prefix>.dense.npy``, ``<prefix>.hot.npy`` and
    ``<prefix>.y.npy``.
    """

    prefixes: tuple[str, ...]
    width: int

    def chunk(self, i: int) -> tuple[Encoded, np.ndarray]:
        prefix = self.prefixes[i]
        return Encoded.load(prefix, self.width), np.load(f"{prefix}.y.npy", allow_pickle=False)

    def labels(self) -> np.ndarray:
        """All labels (n,), small enough to hold: one byte or so per row."""
        return np.concatenate([np.load(f"{p}.y.npy", allow_pickle=False) for p in self.prefixes])

    def __len__(self) -> int:
        return sum(len(np.load(f"{p}.y.npy", mmap_mode="r", allow_pickle=False)) for p in self.prefixes)
