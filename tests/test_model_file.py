"""The model file: safe to open, the same for both backends, and refused cleanly when bad."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from conftest import assert_user_error, run_main
from noshow.data.prepare import prepare
from noshow.errors import NoshowError
from noshow.model import METADATA_KEY, TrainedModel
from noshow.nn.config import MLPConfig
from noshow.training.train import train_model


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    prepared = prepare(small_data)
    model, _ = train_model(prepared, "numpy", MLPConfig(epochs=4, patience=0, members=2))
    path = model.save(tmp_path_factory.mktemp("model") / "model.npz")
    return model, path, prepared


def test_model_file_opens_with_numpy_without_pickle(trained):
    _, path, _ = trained
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        meta = json.loads(archive[METADATA_KEY].tobytes())
    layers = ("hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias", "output.weight", "output.bias")
    assert names == {f"members.{k}.{name}" for k in range(2) for name in layers} | {METADATA_KEY}
    assert meta["format"] == "noshow-model"
    assert meta["data"]["sha256"] and meta["versions"]["numpy"] == np.__version__
    assert meta["config"]["hidden"] == [256, 128]


def test_saved_model_loads_with_identical_weights_and_threshold(trained):
    model, path, _ = trained
    loaded = TrainedModel.load(path)
    assert loaded.threshold == model.threshold
    assert all(np.array_equal(loaded.parameters[k], model.parameters[k]) for k in model.parameters)


@pytest.mark.parametrize("trained_with", ["numpy", "torch"])
def test_either_backend_serves_a_model_from_either_to_1e_5(small_data, trained_with):
    prepared = prepare(small_data)
    model, _ = train_model(prepared, trained_with, MLPConfig(epochs=3, patience=0))
    p_numpy = model.predict_proba(small_data, backend="numpy")
    p_torch = model.predict_proba(small_data, backend="torch")
    assert np.abs(p_numpy - p_torch).max() < 1e-5


def _rewrite(path, out, change):
    """Copy an .npz, letting ``change(arrays)`` edit the dict of arrays first."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    with open(out, "wb") as handle:
        np.savez(handle, **arrays)
    return out


def test_tampered_weights_are_refused(trained, tmp_path):
    _, path, _ = trained
    bad = _rewrite(path, tmp_path / "tampered.npz", lambda a: a["members.1.output.bias"].__setitem__(0, 0.123))
    with pytest.raises(NoshowError, match="do not match their recorded SHA-256"):
        TrainedModel.load(bad)


def test_truncated_file_is_refused(trained, tmp_path):
    _, path, _ = trained
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(NoshowError, match="not a readable model file"):
        TrainedModel.load(bad)


def test_foreign_npz_is_refused(tmp_path):
    bad = tmp_path / "foreign.npz"
    np.savez(bad, weights=np.ones(3))
    with pytest.raises(NoshowError, match="no metadata"):
        TrainedModel.load(bad)


def test_object_arrays_are_refused(trained, tmp_path):
    _, path, _ = trained
    bad = _rewrite(path, tmp_path / "objects.npz",
                   lambda a: a.__setitem__("members.0.output.bias", np.array([{"x": 1}], dtype=object)))
    with pytest.raises(NoshowError, match="pickled or object data"):
        TrainedModel.load(bad)


class _Exploit:
    """Unpickling this would create the marker file: the proof that nothing ran is its absence."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.npz"
    bad.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(NoshowError, match="pickled or object data"):
        TrainedModel.load(bad)
    assert not marker.exists()


def test_pickle_inside_npz_member_is_never_executed(trained, tmp_path):
    marker = tmp_path / "pwned"
    _, path, _ = trained
    bad = tmp_path / "evil_member.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item))
        buffer = io.BytesIO()
        np.save(buffer, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
        dst.writestr("payload.npy", buffer.getvalue())
    with pytest.raises(NoshowError):
        TrainedModel.load(bad)
    assert not marker.exists()


def test_missing_model_gets_one_line_error_and_writes_nothing(small_csv, tmp_path):
    out = tmp_path / "scores.csv"
    result = run_main("predict", "--model", str(tmp_path / "none.npz"), "--data", str(small_csv), "--out", str(out))
    assert_user_error(result, "model file not found")
    assert not out.exists()


def test_text_file_as_model_gets_one_line_error(small_csv, tmp_path):
    out = tmp_path / "scores.csv"
    result = run_main("predict", "--model", str(small_csv), "--data", str(small_csv), "--out", str(out))
    assert_user_error(result, str(small_csv))
    assert not out.exists()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_same_command_and_seed_write_a_byte_identical_model_file(backend, small_csv, tmp_path):
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        result = run_main("train", "--backend", backend, "--data", str(small_csv), "--out", str(path), "--epochs", "2",
                          "--hidden", "16", "--members", "2", "--quiet")
        assert result.returncode == 0, result.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
