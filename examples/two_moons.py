"""The two twins side by side on scikit-learn's two moons: same start, same batches, same weights.

Both networks start from the same initial weights (``noshow.nn.config.initial_parameters``) and
see the same mini-batches in the same order; with dropout off and float64, the NumPy network
written from scratch and the PyTorch one end each epoch with the same weights up to rounding. This
script prints their largest weight difference every few epochs and saves ``two_moons.png``: both
loss curves (they lie on top of each other) and both decision boundaries.

    python examples/two_moons.py [--out two_moons.png] [--epochs 60]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import make_moons

from noshow.nn.config import MLPConfig
from noshow.training import batch_order, make_backend

TWINS = ("numpy", "torch")


def largest_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two parameter sets, over every weight and bias."""
    return max(float(np.max(np.abs(a[name] - b[name]))) for name in a)


def train_side_by_side(X: np.ndarray, y: np.ndarray, config: MLPConfig, report_every: int = 10):
    """Train both twins epoch by epoch on the same batches; return the backends and loss curves."""
    backends = {name: make_backend(name, X.shape[1], config) for name in TWINS}
    for backend in backends.values():
        backend.prepare(X, y, None)
    losses = {name: [] for name in TWINS}
    rng = np.random.default_rng(config.seed)  # one batch order, handed to both
    for epoch in range(config.epochs):
        batches = batch_order(len(y), config.batch_size, rng)
        for name, backend in backends.items():
            losses[name].append(backend.train_batches(batches, epoch, pos_weight=1.0) / len(y))
            backend.end_epoch()
        if epoch % report_every == 0 or epoch == config.epochs - 1:
            gap = largest_difference(*(b.get_parameters() for b in backends.values()))
            print(f"epoch {epoch:3d}  loss numpy {losses['numpy'][-1]:.6f}  torch {losses['torch'][-1]:.6f}  "
                  f"largest weight difference {gap:.1e}")
    return backends, losses


def figure(X, y, backends, losses, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, style in zip(TWINS, ("-", "--")):
        axes[0].plot(losses[name], style, label=f"{name} twin")
    axes[0].set(xlabel="epoch", ylabel="mean training loss (BCE)", title="Loss: the curves coincide")
    axes[0].legend()
    grid = np.stack(np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.1, 1.6, 200)), axis=-1).reshape(-1, 2)
    for ax, name in zip(axes[1:], TWINS):
        p = 1 / (1 + np.exp(-backends[name].predict_logits(grid)))
        ax.contourf(grid[:, 0].reshape(200, 200), grid[:, 1].reshape(200, 200), p.reshape(200, 200),
                    levels=20, cmap="RdBu_r", alpha=0.6)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.2)
        ax.set(title=f"{name} twin: P(class 1)", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="two_moons.png")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    X, y = make_moons(n_samples=600, noise=0.2, random_state=0)
    # float64 and no dropout: the twins' only difference is then floating-point rounding.
    config = MLPConfig(hidden=(32, 32), activation="tanh", dropout=0.0, dtype="float64", lr=0.01,
                       optimizer="adam", weight_decay=0.0, batch_size=32, epochs=args.epochs, members=1)
    backends, losses = train_side_by_side(X.astype(np.float64), y.astype(np.float64), config)
    accuracy = {n: float(((b.predict_logits(X) > 0) == y).mean()) for n, b in backends.items()}
    print(f"training accuracy: numpy {accuracy['numpy']:.3f}, torch {accuracy['torch']:.3f}; figure: {args.out}")
    figure(X, y, backends, losses, args.out)


if __name__ == "__main__":
    main()
