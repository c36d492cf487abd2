"""scikit-learn estimators for the two twins: ``NumpyMLPClassifier`` and ``TorchMLPClassifier``.

They take a numeric feature matrix (use :class:`noshow.data.features.FeaturePipeline`, or any
scikit-learn transformer, to get one) and follow the estimator API: ``fit``, ``predict``,
``predict_proba``, ``decision_function``, ``classes_``, ``get_params``/``set_params`` and sample
weights, so they work in pipelines, cross-validation, grid search and
``TunedThresholdClassifierCV``. Binary classification only.

Probabilities are calibrated: with early stopping, a monotone map (:mod:`noshow.clinic.calibration`,
method ``calibration``) is fitted on the held-out validation rows' logits; without them (or with
fewer than 10 validation rows of either class, or ``calibration="identity"``) the map is the plain
sigmoid. ``decision_function`` gives the calibrated
log-odds, so ``predict`` (calibrated probability above 0.5, the scikit-learn convention),
``predict_proba`` and ``decision_function`` agree; tune the threshold on validation data for
imbalanced problems.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from noshow.clinic.calibration import Calibrator, fit_calibrator
from noshow.nn.config import MLPConfig
from noshow.training import fit_ensemble, make_model

_D = MLPConfig()  # the defaults, defined once in MLPConfig
# Fewer validation rows of either class than this: no calibration (a map fitted on a handful of
# rows would be noise, and a steep one magnifies float32 rounding).
_MIN_CALIBRATION_ROWS = 10


class _MLPClassifier(ClassifierMixin, BaseEstimator):
    """Shared implementation; subclasses only name their backend."""

    _backend = ""

    def __init__(self, hidden_layer_sizes=_D.hidden, activation=_D.activation, dropout=_D.dropout,
                 loss=_D.loss, pos_weight=_D.pos_weight, focal_gamma=_D.focal_gamma,
                 optimizer=_D.optimizer, learning_rate=_D.lr, momentum=_D.momentum,
                 weight_decay=_D.weight_decay, schedule=_D.schedule, max_epochs=_D.epochs,
                 batch_size=_D.batch_size, early_stopping=True, validation_fraction=0.1,
                 patience=_D.patience, members=_D.members, dtype=_D.dtype, random_state=None, device="cpu",
                 calibration="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.loss = loss
        self.pos_weight = pos_weight
        self.focal_gamma = focal_gamma
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.members = members
        self.dtype = dtype
        self.random_state = random_state
        self.device = device
        self.calibration = calibration

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _config(self, seed: int, early_stopping: bool) -> MLPConfig:
        return MLPConfig(
            hidden=tuple(self.hidden_layer_sizes), activation=self.activation, dropout=self.dropout,
            loss=self.loss, pos_weight=self.pos_weight, focal_gamma=self.focal_gamma,
            optimizer=self.optimizer, lr=self.learning_rate, momentum=self.momentum,
            weight_decay=self.weight_decay, schedule=self.schedule, epochs=self.max_epochs,
            batch_size=self.batch_size, patience=self.patience if early_stopping else 0,
            members=self.members, dtype=self.dtype, seed=seed,
        )

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
        if X_val is not None and self.calibration != "identity" and np.bincount(y_val, minlength=2).min() >= _MIN_CALIBRATION_ROWS:
            self.calibrator_ = fit_calibrator(model.predict_logits(X_val), y_val, self.calibration)
        self.n_iter_ = result.epochs_run  # over all members
        self.best_epochs_ = result.best_epochs
        self.loss_curve_ = [h.loss for h in result.history]  # first member
        self.validation_scores_ = [h.val_pr_auc for h in result.history]
        return self

    def network_logits(self, X) -> np.ndarray:
        """The network's own (uncalibrated) logit for each row, shape (n_samples,), float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        model = make_model(self._backend, X.shape[1], self.config_, self.parameters_, self.device)
        return np.asarray(model.predict_logits(X), dtype=np.float64)

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of classes_[1] for each row, shape (n_samples,)."""
        logits = self.network_logits(X)  # checks the fit before calibrator_ is read
        return self.calibrator_.log_odds(logits)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, shape (n_samples, 2), columns in ``classes_`` order."""
        logits = self.network_logits(X)
        p = self.calibrator_(logits)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        positive = self.decision_function(X) > 0  # checks the fit before classes_ is read
        return self.classes_[positive.astype(int)]


class NumpyMLPClassifier(_MLPClassifier):
    """The from-scratch NumPy MLP as a scikit-learn classifier."""

    _backend = "numpy"


class TorchMLPClassifier(_MLPClassifier):
    """The PyTorch twin as a scikit-learn classifier."""

    _backend = "torch"
