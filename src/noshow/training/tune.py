"""``noshow tune``: search the network's hyperparameters on validation data only, with Optuna.

Each trial trains the NumPy twin (the parity tests make the PyTorch twin the same model, so tuning one
tunes both) on the training rows of one split, early-stops on the validation rows, and scores the
model by validation PR AUC. A trial's score is the mean over ``seeds`` seeds: on the real file one
seed's validation PR AUC moves by about ±0.005 from seed to seed, so a one-seed search mostly
rewards luck. The test rows are never used: tune builds no test prediction at all, and a setting it
finds is then judged by ``compare`` / ``bench/quality`` on test rows it never saw.

A trial trains the model as configured, ``--members`` networks included; ``--members 1`` searches
the settings of one network in a third of the time of the 3-member default.

Trial 0 is always the current defaults (the baseline to beat); later trials come from a seeded TPE
sampler, so a search is reproducible. The space is :data:`SPACE`, defined once here.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from noshow.data.prepare import Prepared
from noshow.errors import NoshowError
from noshow.nn.config import MLPConfig
from noshow.training.train import train_model

# name -> ("categorical", choices) | ("float", low, high) | ("log", low, high). Hidden layer choices
# stay at or below the default's cost, so a tuned default cannot break the time limits of compare.
SPACE: dict[str, tuple] = {
    "hidden": ("categorical", ("128", "256", "128,64", "256,64", "256,128")),
    "activation": ("categorical", ("relu", "silu")),
    "dropout": ("float", 0.0, 0.5),
    "loss": ("categorical", ("bce", "focal")),
    "pos_weight": ("log", 1.0, 4.0),
    "lr": ("log", 3e-4, 1e-2),
    "weight_decay": ("log", 1e-5, 1e-1),
    "batch_size": ("categorical", (512, 1024, 2048)),
}


def suggest(trial) -> dict:
    """One point of :data:`SPACE` from an Optuna trial, as MLPConfig keyword values."""
    params = {}
    for name, (kind, *bounds) in SPACE.items():
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(bounds[0]))
        else:
            params[name] = trial.suggest_float(name, bounds[0], bounds[1], log=kind == "log")
    return params


def to_config(base: MLPConfig, params: dict) -> MLPConfig:
    """``base`` with a trial's values (``hidden`` is written "256,128" in the search)."""
    values = dict(params)
    if isinstance(values.get("hidden"), str):
        values["hidden"] = tuple(int(w) for w in values["hidden"].split(","))
    return replace(base, **values)


def point_of(config: MLPConfig) -> dict:
    """The search-space coordinates of ``config`` (to enqueue the defaults as trial 0)."""
    point = {name: getattr(config, name) for name in SPACE}
    point["hidden"] = ",".join(str(w) for w in config.hidden)
    return point


def validation_pr_auc(prepared: Prepared, config: MLPConfig) -> float:
    """Train one model on the training rows (early stopping on validation); its validation PR AUC."""
    model, _ = train_model(prepared, "numpy", config)
    return model.metadata["training"]["val_pr_auc"]


def tune(prepared: Prepared, base: MLPConfig, trials: int, seeds: int = 2, timeout: float | None = None,
         progress: bool = False) -> dict:
    """Run the search; return the content of the tune JSON (best, baseline, every trial)."""
    import optuna

    if trials < 1 or seeds < 1:
        raise NoshowError("--trials and --seeds must be at least 1")
    if not all(_in_space(name, value) for name, value in point_of(base).items()):
        raise NoshowError(f"the starting settings {point_of(base)} lie outside the search space")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.seed))
    study.enqueue_trial(point_of(base))

    def objective(trial) -> float:
        config = to_config(base, suggest(trial))
        started = time.perf_counter()
        scores = [validation_pr_auc(prepared, replace(config, seed=base.seed + s)) for s in range(seeds)]
        trial.set_user_attr("per_seed", scores)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        return float(np.mean(scores))

    study.optimize(objective, n_trials=trials, timeout=timeout, show_progress_bar=progress)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    records = [{"number": t.number, "params": t.params, "val_pr_auc": t.value, **t.user_attrs} for t in done]
    best = max(records, key=lambda r: r["val_pr_auc"])
    return {
        "objective": f"mean validation PR AUC over {seeds} seed(s), NumPy twin",
        "split": prepared.split.kind, **prepared.split.sizes(), "seeds": seeds,
        "space": {name: list(spec[1]) if spec[0] == "categorical" else list(spec) for name, spec in SPACE.items()},
        "baseline": records[0],
        "best": best,
        "best_config": to_config(base, best["params"]).to_dict(),
        "trials": records,
    }


def _in_space(name: str, value) -> bool:
    kind, *bounds = SPACE[name]
    if kind == "categorical":
        return value in bounds[0]
    return bounds[0] <= float(value) <= bounds[1]


def flags(params: dict) -> str:
    """The command-line flags that select ``params`` (for train and compare)."""
    return " ".join(f"--{name.replace('_', '-')} {value:.4g}" if isinstance(value, float)
                    else f"--{name.replace('_', '-')} {value}" for name, value in params.items())
