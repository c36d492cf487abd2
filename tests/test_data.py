"""The loader: the real file, its quirks, and a one-line error for every kind of bad input."""

from __future__ import annotations

import gzip
import re

import polars as pl
import pytest

from conftest import assert_user_error, run_cli, run_main
from noshow.data import loader, rules
from noshow.data import schema as S
from noshow.errors import NoshowError


@pytest.mark.realdata
def test_real_file_has_110527_rows_and_no_show_rate_0_2019(real_data):
    assert len(real_data) == 110_527
    assert round(float(real_data.frame[S.TARGET].mean()), 4) == 0.2019


@pytest.mark.realdata
def test_real_file_quirks_are_counted(real_data):
    counts = {q.name: q.count for q in real_data.quirks}
    assert counts == {
        "Age -1": 1,
        "Age over 100": 7,
        "appointment dated before it was scheduled": 5,
        "PatientId in exponent form": 5,
    }


@pytest.mark.realdata
def test_real_file_patient_ids_are_not_merged_by_float_parsing(real_data):
    assert real_data.frame[S.PATIENT_KEY].n_unique() == 62_299
    assert "93779.52927" in real_data.frame[S.PATIENT_KEY].to_list()


@pytest.mark.realdata
def test_real_file_ages_are_cleaned_into_0_to_100(real_data):
    assert real_data.frame[S.AGE].min() == 0
    assert real_data.frame[S.AGE].max() == 100


@pytest.mark.realdata
def test_check_command_prints_rows_and_rate_of_real_file(real_data_path):
    result = run_main("check", "--data", str(real_data_path))
    assert result.returncode == 0, result.stderr
    assert "110,527" in result.stdout
    assert "0.2019" in result.stdout


def test_gzip_and_plain_files_load_the_same(small_csv, tmp_path):
    packed = tmp_path / "small.csv.gz"
    packed.write_bytes(gzip.compress(small_csv.read_bytes()))
    assert loader.load(packed).frame.equals(loader.load(small_csv).frame)


def test_label_column_is_optional_when_not_required(small_csv, tmp_path):
    lines = small_csv.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != S.LABEL]
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n")
    loaded = loader.load(unlabeled, require_label=False)
    assert not loaded.has_label
    assert len(loaded) == 3000


def test_training_needs_both_classes(small_csv, tmp_path):
    text = small_csv.read_text().replace(",Yes,", ",No,")
    one_class = tmp_path / "one_class.csv"
    one_class.write_text(text)
    with pytest.raises(NoshowError, match="only 0 'no-show' rows"):
        loader.check_trainable(loader.load(one_class))


def test_training_needs_enough_rows(small_csv, tmp_path):
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(small_csv.read_text().splitlines()[:11]) + "\n")
    with pytest.raises(NoshowError, match="10 rows is too few"):
        loader.check_trainable(loader.load(tiny))


# --- every bad input gets one line, exit status 2, no traceback -------------------------------------


def _edit_line(text: str, line_no: int, column: str, value: str) -> str:
    """Replace ``column`` on file line ``line_no`` (1 = header) of a CSV text."""
    lines = text.splitlines()
    header = lines[0].split(",")
    fields = lines[line_no - 1].split(",")
    fields[header.index(column)] = value
    lines[line_no - 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


BAD_TEXTS = {
    "misspelled_column": (lambda t: t.replace("Hipertension", "Hypertension", 1),
                          "missing column 'Hipertension' (found 'Hypertension')"),
    "missing_column": (lambda t: t.replace(",Neighbourhood,", ",Place,", 1), "missing column 'Neighbourhood'"),
    "non_numeric_age": (lambda t: _edit_line(t, 5, "Age", "forty"), "column Age, line 5: 'forty' is not an integer"),
    "unparseable_date": (lambda t: _edit_line(t, 9, "AppointmentDay", "29/04/2016"), "column AppointmentDay, line 9"),
    "unknown_label": (lambda t: _edit_line(t, 4, "No-show", "Maybe"), "column No-show, line 4: unknown value 'Maybe'"),
    "flag_out_of_range": (lambda t: _edit_line(t, 6, "Diabetes", "2"), "column Diabetes, line 6: 2 is outside 0..1"),
    "missing_flag_value": (lambda t: _edit_line(t, 7, "SMS_received", ""),
                           "column SMS_received: 1 missing value(s), first at line 7"),
    "unknown_gender": (lambda t: _edit_line(t, 3, "Gender", "X"), "column Gender, line 3: unknown value 'X'"),
    "header_only": (lambda t: t.splitlines()[0] + "\n", "no data rows"),
    "empty": (lambda t: "", "file is empty"),
    "too_few_fields": (lambda t: "\n".join(line if i != 10 else line.rsplit(",", 1)[0]
                                           for i, line in enumerate(t.splitlines())) + "\n",
                       "line 11 has 14 fields, the header has 15"),
    "too_many_fields": (lambda t: "\n".join(line if i != 3 else line + ",1" for i, line in enumerate(t.splitlines())) + "\n",
                        "line 4 has 16 fields, the header has 15"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEXTS))
def test_bad_text_file_gets_one_line_error(case, small_csv, tmp_path):
    edit, expected = BAD_TEXTS[case]
    bad = tmp_path / f"{case}.csv"
    bad.write_text(edit(small_csv.read_text()))
    assert_user_error(run_main("check", "--data", str(bad)), str(bad), expected)


def test_missing_file_gets_one_line_error(tmp_path):
    assert_user_error(run_main("check", "--data", str(tmp_path / "nope.csv")), "file not found")


def test_binary_file_gets_one_line_error(tmp_path):
    bad = tmp_path / "image.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert_user_error(run_main("check", "--data", str(bad)), "not a text CSV file")


def test_broken_gzip_gets_one_line_error(small_csv, tmp_path):
    bad = tmp_path / "broken.csv.gz"
    bad.write_bytes(gzip.compress(small_csv.read_bytes())[:5000])
    assert_user_error(run_main("check", "--data", str(bad)), "broken gzip file")


def test_bad_flag_gets_one_line_error():
    assert_user_error(run_cli("check", "--no-such-flag"), "unrecognized arguments: --no-such-flag")


@pytest.mark.parametrize("label", [False, True])
def test_typing_in_one_pass_equals_typing_column_by_column(small_csv, label):
    text, _ = loader.read_text_frame(small_csv)
    fast = loader._typed_in_one_pass(small_csv, text, label, loader.FIRST_DATA_LINE)
    checked = loader._typed_checked(small_csv, text, label, loader.FIRST_DATA_LINE)
    assert fast[0].equals(checked[0]) and fast[0].schema == checked[0].schema
    assert fast[1] == checked[1]


@pytest.mark.realdata
def test_typing_the_real_file_in_one_pass_equals_typing_it_column_by_column(real_data_path):
    text, _ = loader.read_text_frame(real_data_path)
    fast = loader._typed_in_one_pass(real_data_path, text, True, loader.FIRST_DATA_LINE)
    checked = loader._typed_checked(real_data_path, text, True, loader.FIRST_DATA_LINE)
    assert fast[0].equals(checked[0]) and fast[0].schema == checked[0].schema
    assert fast[1] == checked[1] and fast[1][3].count == 5  # the five PatientIds in exponent form


def test_a_file_failing_any_check_is_typed_column_by_column(small_csv):
    text, _ = loader.read_text_frame(small_csv)
    bad = text.with_columns(pl.lit("x").alias("Age"))
    assert loader._typed_in_one_pass(small_csv, bad, False, loader.FIRST_DATA_LINE) is None


RANGE_RULES = [rule for rule in rules.COLUMN_RULES if rule.valid is not None]


@pytest.mark.parametrize("rule", RANGE_RULES, ids=[rule.column for rule in RANGE_RULES])
def test_each_column_accepts_its_bounds_and_refuses_one_past_them_naming_the_line(small_csv, rule):
    """The bounds of :data:`noshow.data.rules.COLUMN_RULES`, at their edges (years for a date-time)."""
    text, _ = loader.read_text_frame(small_csv)
    text = text.head(3)
    low, high = rule.valid

    def with_value(value: int) -> pl.DataFrame:  # the value on the second row, file line 3
        cell = f"{value:04d}-04-29T08:00:00Z" if rule.kind == "datetime" else str(value)
        return text.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(cell))
                                 .otherwise(pl.col(rule.column)).alias(rule.column))

    for value in (low, high):
        frame, _ = loader.typed_frame(small_csv, with_value(value))
        assert frame.height == 3
    for value in (low - 1, high + 1):
        with pytest.raises(NoshowError, match=re.escape(f"column {rule.column}, line 3: {value} is outside {low}..{high}")):
            loader.typed_frame(small_csv, with_value(value))
