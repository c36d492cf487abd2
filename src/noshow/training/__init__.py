"""Training: the loop both twins share (:mod:`~noshow.training.loop`), training a model for use
(:mod:`~noshow.training.train`), the fresh-process worker and the hyperparameter search.

Only the loop is imported here: it needs NumPy alone, so a worker process stays light.
"""

from noshow.nn.twins import BACKENDS, Ensemble, make_backend, make_model, predict_all
from noshow.training.loop import EnsembleResult, TrainResult, batch_order, fit, fit_ensemble

__all__ = ["BACKENDS", "Ensemble", "EnsembleResult", "TrainResult", "batch_order", "fit", "fit_ensemble",
           "make_backend", "make_model", "predict_all"]
