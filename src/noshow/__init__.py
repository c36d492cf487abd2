"""noshow: predict missed medical appointments with one MLP written twice, in NumPy and PyTorch.

The scikit-learn estimators are imported lazily so that ``import noshow`` (and the CLI's start-up)
does not pay for importing PyTorch.
"""

__version__ = "0.1.0"
__all__ = ["NumpyMLPClassifier", "TorchMLPClassifier", "__version__"]


def __getattr__(name: str):
    if name in ("NumpyMLPClassifier", "TorchMLPClassifier"):
        from noshow import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'noshow' has no attribute {name!r}")
