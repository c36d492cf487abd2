"""Data preparation: split the appointments, fit the feature pipeline on the training rows, and
build every row's features once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.features import FeaturePipeline, raw_features, spec_of
from noshow.data.loader import Appointments, check_trainable
from noshow.data.splits import Split, make_split
from noshow.errors import NoshowError
from noshow.nn.encoded import Encoded


@dataclass
class Prepared:
    """Features of every row with the pipeline fitted on the training rows of one split."""

    data: Appointments
    split: Split
    pipeline: FeaturePipeline
    features: Encoded  # (n_rows, n_features), compact
    y: np.ndarray  # (n_rows,) in {0, 1}
    raw: pl.DataFrame | None = None  # (n_rows,) raw features, before the pipeline

    def part(self, *names: str) -> tuple[Encoded, np.ndarray]:
        """Features and labels of the "train", "val" or "test" rows, or of several parts in the
        order named (``part("train", "val")``: the rows of a refit)."""
        idx = self.rows(*names)
        return self.features.subset(idx), self.y[idx]

    def rows(self, *names: str) -> np.ndarray:
        """Row indices of the named parts, in the order named."""
        return np.concatenate([getattr(self.split, name) for name in names])


def prepare(data: Appointments, split: str = "random", split_seed: int = 0, dtype: str = "float32",
            hold_out_test: bool = True) -> Prepared:
    """Split ``data``, fit the feature pipeline on its training rows and build all features.

    ``hold_out_test=False`` prepares a model for use: no test part, every row but the validation
    part trains (see :mod:`noshow.data.splits`)."""
    check_trainable(data)
    spec = spec_of(data.frame, data.schema)
    raw = raw_features(data.frame, spec=spec)
    parts = make_split(data.frame, split, split_seed, hold_out_test)
    for name, idx in (("training", parts.train), ("validation", parts.val)):
        labels = data.frame[S.TARGET].to_numpy()[idx]
        if len(np.unique(labels)) < 2:
            raise NoshowError(f"{data.source}: the {name} part of the {split} split has one class only")
    pipeline = FeaturePipeline(spec=spec).fit(raw[parts.train])
    features = pipeline.encode(raw, dtype=np.dtype(dtype))
    return Prepared(data, parts, pipeline, features, data.frame[S.TARGET].to_numpy().astype(np.int64), raw)
