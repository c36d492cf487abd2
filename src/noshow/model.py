"""A trained noshow model: features, network weights and decision threshold, and its file format.

The model file is one ``.npz`` that ``numpy.load(path, allow_pickle=False)`` opens. It holds the
parameters of each of the model's networks as named float arrays (``members.<k>.hidden.0.weight``
... ``members.<k>.output.bias``, weights (out, in), the PyTorch ``state_dict`` layout) and one uint8
array ``__metadata__``: UTF-8 JSON with
the architecture, feature pipeline, calibration map (``calibration``, see
:mod:`noshow.stats.calibration`), threshold (on calibrated probabilities), training settings, package versions, the training
data's checksum and a SHA-256 of the weights. Both backends write and read the same file, so a
model trained by either is served by either. Nothing in the file is ever executed: no pickle, and
every array is checked for name, dtype, shape and finiteness before use.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from noshow import __version__
from noshow.data.features import FeaturePipeline, raw_features
from noshow.data.loader import Appointments
from noshow.errors import NoshowError
from noshow.files import atomic_path
from noshow.nn.config import MLPConfig, layer_sizes, member_prefix, model_parameter_names
from noshow.nn.twins import make_model
from noshow.stats.calibration import Calibrator

if TYPE_CHECKING:  # the schema file's reader is imported where a model has a schema
    from noshow.data.schema_file import Schema

FORMAT = "noshow-model"
FORMAT_VERSION = 3  # 2: parameters of several ensemble members; 3: calibration map, reason baselines
CALIBRATION_KEY = "calibration"
METADATA_KEY = "__metadata__"
METADATA_DIGEST_KEY = "metadata_sha256"


@dataclass
class TrainedModel:
    """Everything needed to score new appointments, and the record of how it was trained."""

    config: MLPConfig
    parameters: dict[str, np.ndarray]
    pipeline: FeaturePipeline
    threshold: float  # on calibrated probabilities
    metadata: dict = field(default_factory=dict)
    calibrator: Calibrator = field(default_factory=lambda: Calibrator("identity"))
    # Values derived from the fields above and reused by every scoring call (filled on first use,
    # never saved): a service scoring one appointment at a time would otherwise recompute them each time.
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def schema(self) -> "Schema | None":
        """The schema file the model was trained through (its files are read the same way), or
        None for the Kaggle layout."""
        from noshow.data.schema_file import Schema

        recorded = self.metadata.get("data", {}).get("schema")
        return None if recorded is None else Schema.from_dict(recorded, "model file's schema")

    def check_fits(self, data: Appointments) -> None:
        """Refuse appointments read in another layout than the model's (a FHIR export, or another
        schema's, for a model of the Kaggle layout): their features would not be the model's."""
        recorded, read = self.schema, data.schema
        if (recorded is None) != (read is None) or (recorded is not None and recorded.to_dict() != read.to_dict()):
            trained = "the Kaggle layout" if recorded is None else f"the schema {recorded.name!r}"
            raise NoshowError(f"{data.source}: read as {'the Kaggle layout' if read is None else repr(read.name)}, "
                              f"but the model was trained on {trained}; give it files of its own layout")

    @property
    def n_inputs(self) -> int:
        return int(self.parameters[member_prefix(0) + "hidden.0.weight"].shape[1])

    def predict_logits(self, X, backend: str = "numpy", device: str = "cpu") -> np.ndarray:
        """Logits (n,) of an (n, n_inputs) array or :class:`Encoded`."""
        return self._network(backend, device).predict_logits(X)

    def _network(self, backend: str, device: str):
        # Building the networks costs milliseconds (a copy of every weight); predicting writes
        # nothing in either twin (no cached inputs, torch in inference mode), so one set is shared.
        key = ("network", backend, device)
        if key not in self.derived:
            self.derived[key] = make_model(backend, self.n_inputs, self.config, self.parameters, device)
        return self.derived[key]

    def predict_proba(self, data: Appointments, backend: str = "numpy", history: Appointments | None = None,
                      device: str = "cpu") -> np.ndarray:
        """Calibrated P(no-show) of each appointment in ``data``, shape (n,), float64."""
        raw = raw_features(data.frame, None if history is None else history.frame, spec=self.pipeline.spec)
        return self.calibrator(self.predict_logits(self.pipeline.encode(raw, self.config.np_dtype), backend, device))

    # --- file format -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model atomically (no partial file on failure)."""
        arrays = {name: np.ascontiguousarray(self.parameters[name]) for name in model_parameter_names(self.config)}
        meta = dict(self.metadata)
        meta.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            n_inputs=self.n_inputs,
            config=self.config.to_dict(),
            feature_pipeline=self.pipeline.to_dict(),
            threshold=self.threshold,
            calibration=self.calibrator.to_dict(),
            weights_sha256=weights_digest(arrays),
        )
        meta.setdefault("versions", package_versions())
        meta[METADATA_DIGEST_KEY] = metadata_digest(meta)
        arrays[METADATA_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "TrainedModel":
        """Read and verify a model file; any problem is a :class:`NoshowError` naming the file."""
        return _read_model(Path(path))


def metadata_digest(meta: dict) -> str:
    """SHA-256 of the metadata's canonical JSON (sorted keys), its own digest left out. The weights
    have their own digest; this one guards the threshold, calibration, pipeline and the rest, so an
    edited file is refused instead of silently flagging other patients."""
    body = {k: v for k, v in meta.items() if k != METADATA_DIGEST_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def weights_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over each parameter's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    import sklearn

    return {"noshow": __version__, "numpy": np.__version__, "polars": pl.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise NoshowError(f"{path}: model file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise NoshowError(f"{path}: not a noshow model file (a single array, not an .npz archive)")
            return {name: archive[name] for name in archive.files}
    except NoshowError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise NoshowError(f"{path}: refused: the file holds pickled or object data") from None
        raise NoshowError(f"{path}: not a noshow model file ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: whatever NumPy's zip and .npy parsers raise
        # (OSError, BadZipFile, zlib.error, and SyntaxError or tokenize.TokenError from the .npy header,
        # which NumPy reads with ast.literal_eval), the file is not a readable model.
        first = (str(exc).splitlines() or [""])[0][:200]
        raise NoshowError(f"{path}: not a readable model file ({type(exc).__name__}: {first})") from None


def _read_metadata(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    raw = arrays.pop(METADATA_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise NoshowError(f"{path}: not a noshow model file (no metadata)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NoshowError(f"{path}: corrupt model metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NoshowError(f"{path}: not a noshow model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, int) and version < FORMAT_VERSION:
        raise NoshowError(f"{path}: model format version {version} predates calibrated probabilities and "
                          f"reasons (this noshow reads {FORMAT_VERSION}); retrain it with noshow train")
    if version != FORMAT_VERSION:
        raise NoshowError(f"{path}: unsupported model format version {version!r} (this noshow reads {FORMAT_VERSION})")
    if meta.get(METADATA_DIGEST_KEY) != metadata_digest(meta):
        raise NoshowError(f"{path}: metadata does not match its recorded SHA-256 (file modified or corrupted)")
    return meta


def _check_parameters(path: Path, arrays: dict[str, np.ndarray], config: MLPConfig, n_inputs: int) -> None:
    expected = model_parameter_names(config)
    if sorted(arrays) != sorted(expected):
        raise NoshowError(f"{path}: model arrays {sorted(arrays)} do not match its architecture")
    shapes = []
    for fan_in, fan_out in layer_sizes(n_inputs, config):
        shapes += [(fan_out, fan_in), (fan_out,)]
    for name, shape in zip(expected, shapes * config.members):
        a = arrays[name]
        if a.dtype != config.np_dtype or a.shape != shape:
            raise NoshowError(f"{path}: array {name} is {a.dtype}{list(a.shape)}, expected {config.dtype}{list(shape)}")
        if not np.all(np.isfinite(a)):
            raise NoshowError(f"{path}: array {name} holds non-finite values")


def _read_model(path: Path) -> TrainedModel:
    arrays = _read_arrays(path)
    meta = _read_metadata(path, arrays)
    try:
        config = MLPConfig.from_dict(meta["config"])
        n_inputs = int(meta["n_inputs"])
        pipeline = FeaturePipeline.from_dict(meta["feature_pipeline"])
        threshold = float(meta["threshold"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NoshowError(f"{path}: corrupt model metadata ({type(exc).__name__}: {exc})") from None
    try:
        calibrator = Calibrator.from_dict(meta.get(CALIBRATION_KEY) or {})
    except NoshowError as exc:
        raise NoshowError(f"{path}: {exc}") from None
    _check_parameters(path, arrays, config, n_inputs)
    if weights_digest(arrays) != meta.get("weights_sha256"):
        raise NoshowError(f"{path}: weights do not match their recorded SHA-256 (file modified or corrupted)")
    if len(pipeline.feature_names) != n_inputs or not 0.0 <= threshold <= 1.0:
        raise NoshowError(f"{path}: inconsistent model (features {len(pipeline.feature_names)} vs inputs {n_inputs}, "
                          f"threshold {threshold})")
    return TrainedModel(config, arrays, pipeline, threshold, meta, calibrator)
