"""scikit-learn estimators for the two twins: ``NumpyMLPClassifier`` and ``TorchMLPClassifier``.

They take a numeric feature matrix (use :class:`noshow.data.features.FeaturePipeline`, or any
scikit-learn transformer, to get one) and follow the estimator API: ``fit``, ``predict``,
``predict_proba``, ``decision_function``, ``classes_``, ``get_params``/``set_params`` and sample
weights, so they work in pipelines, cross-validation, grid search and
``TunedThresholdClassifierCV``. Binary classification only.

Probabilities are calibrated: with early stopping, a monotone map (:mod:`noshow.stats.calibration`,
method ``calibration``) is fitted on the held-out validation rows' logits; without them (or with
fewer than 10 validation rows of either class, or ``calibration="identity"``) the map is the plain
sigmoid. ``predict`` says classes_[1] where the calibrated probability exceeds ``threshold_``: with
``threshold="auto"`` (the default) the maximum-F1 threshold on those validation rows, as skorch's
binary classifier and ``noshow train`` do, because 0.5 on 20% positives flags almost no one (the
original study's F1 of 0.014); ``threshold=0.3`` fixes it. ``decision_function`` is the calibrated
log-odds minus the threshold's, so the three methods agree. Every hyperparameter of
:class:`~noshow.nn.config.MLPConfig` is a parameter (:data:`PARAMS`).
"""

from __future__ import annotations

import inspect
from dataclasses import fields, replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from noshow.nn.config import MLPConfig
from noshow.stats.calibration import Calibrator, fit_calibrator
from noshow.stats.metrics import steady_f1_threshold
from noshow.training import fit_ensemble, make_model

# Every MLPConfig field is a parameter, under its own name except these three, which take
# scikit-learn's MLPClassifier names; ``seed`` comes from ``random_state``. A new field needs no edit.
SKLEARN_NAMES = {"hidden": "hidden_layer_sizes", "lr": "learning_rate", "epochs": "max_epochs"}
CONFIG_PARAMS = {SKLEARN_NAMES.get(f.name, f.name): f.name for f in fields(MLPConfig) if f.name != "seed"}
# The estimator's own parameters: how it holds out validation rows and what it does with them.
OWN_PARAMS = {"early_stopping": True, "validation_fraction": 0.1, "random_state": None, "device": "cpu",
              "calibration": "auto", "threshold": "auto"}
PARAMS = {**{name: getattr(MLPConfig(), field) for name, field in CONFIG_PARAMS.items()}, **OWN_PARAMS}
# Fewer validation rows of either class than this: no calibration and threshold 0.5 (a map or a
# threshold fitted on a handful of rows would be noise).
_MIN_CALIBRATION_ROWS = 10


class _MLPClassifier(ClassifierMixin, BaseEstimator):
    """Shared implementation; subclasses only name their backend. Parameters: :data:`PARAMS`."""

    _backend = ""

    def __init__(self, **params):
        unknown = set(params) - set(PARAMS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameters {sorted(unknown)}")
        for name, default in PARAMS.items():
            setattr(self, name, params.get(name, default))

    # scikit-learn reads the parameters from the signature of __init__: give it the real list.
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default) for name, default in PARAMS.items()])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _config(self, seed: int, early_stopping: bool) -> MLPConfig:
        values = {field: getattr(self, name) for name, field in CONFIG_PARAMS.items()}
        values["hidden"] = tuple(values["hidden"])
        if not early_stopping:
            values["patience"] = 0
        return MLPConfig(**values, seed=seed)

    def _validation_split(self, X, y, w, seed):
        """Hold out a stratified ``validation_fraction`` for early stopping, when both classes allow."""
        n_val = int(round(self.validation_fraction * len(y)))
        if not self.early_stopping or n_val < 2 or np.bincount(y, minlength=2).min() < 4:
            return X, y, w, None, None
        idx = np.arange(len(y))
        train, val = train_test_split(idx, test_size=n_val, stratify=y, random_state=seed)
        return X[train], y[train], w[train], X[val], y[val]

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features) and binary y; returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"Only binary classification is supported by {type(self).__name__}; "
                f"y has {len(self.classes_)} class(es)"
            )
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        X_fit, y_fit, w_fit, X_val, y_val = self._validation_split(X, y_index, sample_weight, seed)
        config = self._config(seed, X_val is not None)
        model = make_model(self._backend, X.shape[1], config, device=self.device)
        result = fit_ensemble(model, X_fit, y_fit, config, X_val, y_val, sample_weight=w_fit)
        self.config_ = config
        self.parameters_ = result.parameters
        self.calibrator_ = Calibrator("identity")
        self.threshold_ = 0.5 if self.threshold == "auto" else float(self.threshold)
        if X_val is not None and np.bincount(y_val, minlength=2).min() >= _MIN_CALIBRATION_ROWS:
            logits = self._logits(X_val)
            if self.calibration != "identity":
                self.calibrator_ = fit_calibrator(logits, y_val, self.calibration)
            if self.threshold == "auto":  # 0.5 on 20% positives is the mistake the report explains
                self.threshold_ = steady_f1_threshold(y_val, self.calibrator_(logits))
        self.n_iter_ = result.epochs_run  # over all members
        self.best_epochs_ = result.best_epochs
        self.loss_curve_ = [h.loss for h in result.history]  # first member
        self.validation_scores_ = [h.val_pr_auc for h in result.history]
        return self

    def _logits(self, X) -> np.ndarray:
        # Scored in float64 whatever the training dtype: float32 BLAS rounds a row differently with
        # the matrix's shape and the row's place in it (~1e-7), and a prediction must not depend on
        # which other rows came with it.
        config = replace(self.config_, dtype="float64")
        parameters = {k: v.astype(np.float64) for k, v in self.parameters_.items()}
        model = make_model(self._backend, X.shape[1], config, parameters, self.device)
        return np.asarray(model.predict_logits(X), dtype=np.float64)

    def network_logits(self, X) -> np.ndarray:
        """The network's own (uncalibrated) logit for each row, shape (n_samples,), float64."""
        check_is_fitted(self)
        return self._logits(validate_data(self, X, reset=False, dtype=np.float64))

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of classes_[1] minus the log-odds of the decision threshold, shape
        (n_samples,): positive exactly where ``predict`` says classes_[1]."""
        logits = self.network_logits(X)  # checks the fit before calibrator_ is read
        return self.calibrator_.log_odds(logits) - np.log(self.threshold_ / (1 - self.threshold_))

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, shape (n_samples, 2), columns in ``classes_`` order."""
        logits = self.network_logits(X)
        p = self.calibrator_(logits)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        positive = self.decision_function(X) > 0  # calibrated probability above threshold_
        return self.classes_[positive.astype(int)]


class NumpyMLPClassifier(_MLPClassifier):
    """The from-scratch NumPy MLP as a scikit-learn classifier."""

    _backend = "numpy"


class TorchMLPClassifier(_MLPClassifier):
    """The PyTorch twin as a scikit-learn classifier."""

    _backend = "torch"
