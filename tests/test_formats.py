"""Files as clinics export them: Latin-1 / Windows-1252 or UTF-8 with a byte-order mark, ';' or
',' separators, Windows line ends, columns in any order and extra columns, repeated IDs, and a
whole export passed as history."""

from __future__ import annotations

import gzip

import numpy as np
import polars as pl
import pytest

from conftest import assert_user_error, run_main
from noshow.clinic.reasons import GROUPS, reason_strings
from noshow.data import schema as S
from noshow.data.features import raw_features
from noshow.data.loader import load
from noshow.errors import NoshowError

ACCENTED = "ILHA DO PRÍNCIPE"


def _text(path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")


def _with_accents(small_csv, tmp_path) -> tuple[str, object]:
    """The small synthetic file with one neighbourhood renamed to an accented one."""
    text = _text(small_csv)
    first = pl.read_csv(small_csv, infer_schema=False)[S.NEIGHBOURHOOD][0]
    text = text.replace(f",{first},", f",{ACCENTED},")
    original = tmp_path / "accented.csv"
    original.write_text(text, encoding="utf-8")
    return text, load(original)


def _variants(text: str) -> dict[str, bytes]:
    """The same table as a Brazilian spreadsheet might export it."""
    semicolon = text.replace(",", ";")
    return {
        "latin-1": text.encode("latin-1"),
        "windows-1252 ;-separated CRLF": semicolon.replace("\n", "\r\n").encode("cp1252"),
        "utf-8 with BOM": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "utf-8 ;-separated": semicolon.encode("utf-8"),
        "utf-8 CRLF": text.replace("\n", "\r\n").encode("utf-8"),
        "tab-separated": text.replace(",", "\t").encode("utf-8"),
    }


@pytest.mark.parametrize("variant", sorted(_variants("a").keys()))
def test_export_variant_loads_the_same_rows_and_values(variant, small_csv, tmp_path):
    text, original = _with_accents(small_csv, tmp_path)
    path = tmp_path / "export.csv"
    path.write_bytes(_variants(text)[variant])
    loaded = load(path)
    assert loaded.frame.equals(original.frame)
    assert ACCENTED in loaded.frame[S.NEIGHBOURHOOD].to_list()


def test_detected_encoding_and_separator_are_reported(small_csv, tmp_path):
    text, _ = _with_accents(small_csv, tmp_path)
    path = tmp_path / "export.csv"
    path.write_bytes(text.replace(",", ";").encode("cp1252"))
    result = run_main("check", "--data", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert '"encoding": "cp1252"' in result.stdout and '"separator": "semicolon"' in result.stdout


def test_given_encoding_overrides_detection(small_csv, tmp_path):
    text, original = _with_accents(small_csv, tmp_path)
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("latin-1"))
    assert load(path, encoding="latin-1").frame.equals(original.frame)
    with pytest.raises(NoshowError, match="not utf-8 text .* try --encoding cp1252"):
        load(path, encoding="utf-8")


def test_header_that_defeats_separator_detection_suggests_the_flag(small_csv, tmp_path):
    text = _text(small_csv)
    path = tmp_path / "pipes.csv"
    path.write_text(text.replace(",", "|"))
    assert_user_error(run_main("check", "--data", str(path)), "cannot tell the field separator", "--sep")
    assert run_main("check", "--data", str(path), "--sep", "|").returncode == 0


def test_columns_in_any_order_with_extra_columns_load_the_same(small_csv, small_data, tmp_path):
    frame = pl.read_csv(small_csv, infer_schema=False)
    shuffled = frame.select(reversed(frame.columns)).with_columns(pl.lit("x").alias("Clinic notes"))
    path = tmp_path / "shuffled.csv"
    shuffled.write_csv(path)
    assert load(path).frame.select(small_data.frame.columns).equals(small_data.frame)


def test_accented_names_survive_into_predict_output(small_csv, tmp_path):
    text, _ = _with_accents(small_csv, tmp_path)
    export = tmp_path / "export.csv"
    export.write_bytes(text.replace(",", ";").encode("cp1252"))
    model, scores = tmp_path / "m.npz", tmp_path / "scores.csv"
    assert run_main("train", "--data", str(export), "--out", str(model), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    result = run_main("predict", "--model", str(model), "--data", str(export), "--out", str(scores), "--quiet")
    assert result.returncode == 0, result.stderr
    # The neighbourhood reason is the one that names it: cite it for every row, as the output writes it.
    raw = raw_features(load(export).frame)
    sizes = np.zeros((raw.height, len(GROUPS)))
    sizes[:, list(GROUPS).index("neighbourhood")] = 1.0
    cited = [r for r in reason_strings(raw, sizes) if "Príncipe" in r]
    assert cited and all(r == "neighbourhood Ilha Do Príncipe (+1.00)" for r in cited)
    assert "Ã" not in scores.read_text(encoding="utf-8")


def test_repeated_appointment_ids_stop_training_naming_the_lines(small_csv, tmp_path):
    lines = _text(small_csv).splitlines()
    path = tmp_path / "dupes.csv"
    path.write_text("\n".join([*lines, lines[1], lines[2]]) + "\n")
    model = tmp_path / "m.npz"
    assert_user_error(run_main("train", "--data", str(path), "--out", str(model)),
                      "2 row(s) repeat an earlier AppointmentID", f"lines {len(lines) + 1}, {len(lines) + 2}")
    assert not model.exists()


def test_repeated_appointment_ids_are_a_warning_when_scoring(small_csv, tmp_path):
    model = tmp_path / "m.npz"
    assert run_main("train", "--data", str(small_csv), "--out", str(model), "--epochs", "1", "--hidden", "8",
                    "--members", "1", "--quiet").returncode == 0
    lines = _text(small_csv).splitlines()
    path = tmp_path / "dupes.csv"
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    result = run_main("predict", "--model", str(model), "--data", str(path), "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    assert "noshow: warning:" in result.stderr and "1 row(s) repeat an earlier AppointmentID" in result.stderr
    assert pl.read_csv(tmp_path / "s.csv").height == len(lines)


def test_an_appointment_in_both_data_and_history_is_counted_once(small_data):
    frame = small_data.frame
    scored, others = frame.head(300), frame.slice(300)
    whole_export = raw_features(scored, frame)
    only_others = raw_features(scored, others)
    assert whole_export.equals(only_others)
    # and counting it twice would have changed the features (the bug this guards against)
    twice = raw_features(scored, pl.concat([others, scored]).with_columns(
        (pl.col(S.APPOINTMENT_ID) + 10**9).alias(S.APPOINTMENT_ID)))
    assert not twice.equals(only_others)


@pytest.mark.realdata
@pytest.mark.parametrize("variant", ["latin-1", "windows-1252 ;-separated CRLF", "utf-8 with BOM"])
def test_real_file_exported_as_variant_loads_identically(variant, real_data_path, real_data, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(_variants(_text(real_data_path))[variant])
    loaded = load(path)
    assert loaded.frame.equals(real_data.frame)
    assert np.array_equal(loaded.frame[S.APPOINTMENT_ID].to_numpy(), real_data.frame[S.APPOINTMENT_ID].to_numpy())
