"""Calibration: a strictly increasing map from a network's logit to P(no-show), fitted on
validation rows only.

The network is trained with a positive-class weight, so its raw sigmoid over-states risk; a clinic
acting on "30% risk" needs 30% to mean 30%. Every map here is *strictly* increasing in the logit, so
the order of appointments (and hence PR AUC, ROC AUC and every call list) is unchanged:

- ``platt``: p = sigmoid(a * z + b) with a > 0, fitted by Newton's method on the log loss.
  (Temperature scaling is the special case b = 0; with a class-weighted loss the bias is needed.)
- ``isotonic``: scikit-learn's isotonic regression of the label on the logit gives a step function,
  whose flat steps would tie appointments and can lower PR AUC. We keep one knot per step (its
  centre: the mean logit of its rows, its value: the step's rate, clipped to [1e-4, 1 - 1e-4]) and
  interpolate the log-odds linearly between knots, with a gentle slope beyond the end knots, so the
  map is strictly increasing everywhere.
- ``identity``: p = sigmoid(z) (for models that were never calibrated).
- ``auto``: the one of ``platt`` and ``isotonic`` with the lower log loss in 5-fold cross-validation
  over the validation rows (isotonic must be better by 0.1% of the log loss to be chosen: the
  two-parameter map is preferred when they are equal), then refitted on all of them.

Maps are applied in float64 and written as JSON-ready dicts (``to_dict``/``from_dict``), never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from noshow.errors import NoshowError
from noshow.nn.numpy_mlp import sigmoid

METHODS = ("auto", "platt", "isotonic", "identity")
ECE_BINS = 10
_CLIP = 1e-4  # isotonic step rates are kept inside [_CLIP, 1 - _CLIP], so their log-odds stay finite
TAIL_SLOPE = 1e-3  # log-odds per logit beyond the end knots: strictly increasing, almost flat
_CV_FOLDS = 5
_ISOTONIC_MARGIN = 1e-3  # relative log-loss gain isotonic needs to be chosen over platt
_MIN_SLOPE = 1e-3  # a Platt slope is kept at least this (a map must stay increasing)


def _log_odds(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from logits to calibrated probabilities.

    ``params`` are plain floats and lists (JSON-ready): ``platt``: ``a``, ``b``; ``isotonic``:
    ``knots_logit`` and ``knots_log_odds`` (strictly increasing, equal length >= 1).
    """

    method: str
    params: dict = field(default_factory=dict)

    def log_odds(self, logits) -> np.ndarray:
        """Calibrated log-odds (n,) float64 of logits (n,) of any float dtype."""
        z = np.asarray(logits, dtype=np.float64)
        if self.method == "identity":
            return z.copy()
        if self.method == "platt":
            return self.params["a"] * z + self.params["b"]
        x = np.asarray(self.params["knots_logit"], dtype=np.float64)
        y = np.asarray(self.params["knots_log_odds"], dtype=np.float64)
        inside = np.interp(z, x, y)
        return np.where(z < x[0], y[0] + TAIL_SLOPE * (z - x[0]),
                        np.where(z > x[-1], y[-1] + TAIL_SLOPE * (z - x[-1]), inside))

    def __call__(self, logits) -> np.ndarray:
        """Calibrated P(no-show), shape (n,), float64, strictly increasing in the logit."""
        return sigmoid(self.log_odds(logits))

    def to_dict(self) -> dict:
        return {"method": self.method, **self.params}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        """Rebuild from :meth:`to_dict`'s output; a malformed dict is a :class:`NoshowError`."""
        try:
            method = d["method"]
            if method == "identity":
                return cls("identity", {})
            if method == "platt":
                a, b = float(d["a"]), float(d["b"])
                if not (np.isfinite(a) and np.isfinite(b) and a > 0):
                    raise ValueError(f"platt needs finite a > 0 and b, got a={a}, b={b}")
                return cls("platt", {"a": a, "b": b})
            if method == "isotonic":
                x = [float(v) for v in d["knots_logit"]]
                y = [float(v) for v in d["knots_log_odds"]]
                if not x or len(x) != len(y) or not np.all(np.isfinite(x + y)) \
                        or np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0):
                    raise ValueError("isotonic knots must be finite, of equal length and strictly increasing")
                return cls("isotonic", {"knots_logit": x, "knots_log_odds": y})
            raise ValueError(f"unknown calibration method {method!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise NoshowError(f"bad calibration map ({type(exc).__name__}: {exc})") from None


def _fit_platt(z: np.ndarray, y: np.ndarray) -> Calibrator:
    """Logistic regression of y on z (two parameters), Newton's method in float64."""
    a, b = 1.0, 0.0
    X = np.column_stack([z, np.ones_like(z)])
    for _ in range(100):
        p = sigmoid(a * z + b)
        grad = X.T @ (p - y)
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, 5.0 / max(np.max(np.abs(step)), 1e-300))  # damped: separable data must not diverge
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    if not a >= _MIN_SLOPE:  # a useless or inverted score: keep the map increasing, refit the bias
        a = _MIN_SLOPE
        rate = np.clip(y.mean(), _CLIP, 1 - _CLIP)
        b = float(_log_odds(np.array(rate)) - a * z.mean())
    return Calibrator("platt", {"a": float(a), "b": float(b)})


def _fit_isotonic(z: np.ndarray, y: np.ndarray) -> Calibrator:
    """Isotonic steps turned into strictly increasing knots (step centre, step log-odds)."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(z, kind="mergesort")
    zs, ys = z[order], y[order]
    fitted = IsotonicRegression(out_of_bounds="clip").fit(zs, ys).predict(zs)
    starts = np.r_[0, np.flatnonzero(np.diff(fitted) > 0) + 1]
    counts = np.diff(np.r_[starts, len(zs)])
    centres = np.add.reduceat(zs, starts) / counts
    rates = np.clip(fitted[starts], _CLIP, 1 - _CLIP)
    log_odds = _log_odds(rates)
    keep = np.r_[True, np.diff(log_odds) > 0]  # clipping can merge the extreme steps
    return Calibrator("isotonic", {"knots_logit": centres[keep].tolist(),
                                   "knots_log_odds": log_odds[keep].tolist()})


_FITTERS = {"platt": _fit_platt, "isotonic": _fit_isotonic}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (clipped to 1e-15) for labels ``y``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def cross_validated_log_loss(z: np.ndarray, y: np.ndarray, method: str, folds: int = _CV_FOLDS) -> float:
    """Out-of-fold log loss of ``method`` on (z, y), with folds fixed by a seeded permutation."""
    fold_of = np.random.default_rng(0).permutation(len(z)) % folds
    p = np.empty(len(z))
    for k in range(folds):
        held = fold_of == k
        p[held] = _FITTERS[method](z[~held], y[~held])(z[held])
    return log_loss(y, p)


def choose_method(z: np.ndarray, y: np.ndarray) -> str:
    """``platt`` or ``isotonic``, whichever predicts held-out validation rows better (log loss)."""
    platt = cross_validated_log_loss(z, y, "platt")
    isotonic = cross_validated_log_loss(z, y, "isotonic")
    return "isotonic" if isotonic < platt * (1 - _ISOTONIC_MARGIN) else "platt"


def fit_calibrator(logits_val: np.ndarray, y_val: np.ndarray, method: str = "auto") -> Calibrator:
    """Fit a calibration map on validation logits (n,) and labels (n,) in {0, 1}.

    ``method`` is one of :data:`METHODS`; ``auto`` chooses by cross-validation on these rows.
    """
    if method not in METHODS:
        raise NoshowError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "identity":
        return Calibrator("identity", {})
    z = np.asarray(logits_val, dtype=np.float64).ravel()
    y = np.asarray(y_val, dtype=np.float64).ravel()
    if len(z) != len(y) or len(np.unique(y)) < 2 or not np.all(np.isfinite(z)):
        raise NoshowError("calibration needs finite validation logits and labels of both classes")
    if method == "auto":
        method = choose_method(z, y) if len(z) >= 10 * _CV_FOLDS else "platt"
    return _FITTERS[method](z, y)


def reliability_bins(y, p, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-mass reliability bins: rows sorted by ``p`` (stable sort, so ties keep their input
    order) and cut into ``bins`` groups whose sizes differ by at most one (``numpy.array_split``).

    Parameters
    ----------
    y : (n,) labels in {0, 1}; p : (n,) probabilities; bins : number of bins (at most n are used).

    Returns
    -------
    mean_predicted, observed_rate, rows : three (bins,) arrays, bins in increasing ``p`` (the points
    of a reliability figure, and the terms of :func:`expected_calibration_error`).
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    chunks = np.array_split(np.argsort(p, kind="mergesort"), min(bins, len(p)))
    return (np.array([p[c].mean() for c in chunks]), np.array([y[c].mean() for c in chunks]),
            np.array([len(c) for c in chunks]))


def expected_calibration_error(y, p, bins: int = ECE_BINS) -> float:
    """Expected calibration error with *equal-mass* bins (:func:`reliability_bins`): the sum over
    bins of (bin rows / all rows) * |mean predicted probability - observed no-show rate|.

    Parameters
    ----------
    y : (n,) labels in {0, 1}; p : (n,) probabilities; bins : number of bins (at most n).
    """
    predicted, observed, rows = reliability_bins(y, p, bins)
    return float(np.sum(rows * np.abs(predicted - observed)) / np.sum(rows))
