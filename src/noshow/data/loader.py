"""Loading and validating appointment files.

One loader serves every command. It reads a CSV (plain or gzip) entirely as text, checks the shape of
every line, then parses each column strictly so that any bad value is reported with its column and
file line instead of being silently coerced; the columns' rules are the table of
:mod:`noshow.data.rules`. The data quirks listed in ``shared/DOMAIN.md`` are counted and handled on
purpose, and reported by :func:`noshow.data.summary.summarize` (``noshow check``).

Line numbers in messages are file lines: the header is line 1, the first data row line 2.
"""

from __future__ import annotations

import csv
import difflib
import functools
import gzip
import hashlib
import io
import json
import os
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from noshow.data import roles
from noshow.data import schema as S
from noshow.data.rules import AGE_CAP, COLUMN_RULES, LABEL_RULE, MAX_ID_DIGITS, ColumnRule
from noshow.data.schema_file import Schema
from noshow.errors import NoshowError

DATA_ENV = "NOSHOW_DATA"
GZIP_MAGIC = b"\x1f\x8b"
FIRST_DATA_LINE = 2  # file line of data row 0


@dataclass(frozen=True)
class Quirk:
    """A data quirk found by the loader: what, how many rows, and what was done about it."""

    name: str
    count: int
    handling: str


@dataclass
class Appointments:
    """A validated appointments table.

    ``frame`` holds the original columns, typed, plus the derived columns named in
    :mod:`noshow.data.schema` (``patient_key``, ``scheduled_date``, ``appointment_date`` and, when the
    file has labels, ``target`` in {0, 1}).
    """

    frame: pl.DataFrame
    source: str
    sha256: str
    synthetic: bool = False
    quirks: list[Quirk] = field(default_factory=list)
    text_format: "TextFormat | None" = None  # how the file was read (None: not read from a file)
    schema: "Schema | None" = None  # the schema file it was read through (None: the Kaggle layout)

    @property
    def has_label(self) -> bool:
        return S.TARGET in self.frame.columns

    @property
    def has_true_probability(self) -> bool:
        return S.TRUE_PROBABILITY in self.frame.columns

    def __len__(self) -> int:
        return self.frame.height


# --------------------------------------------------------------------------------------------------
# Reading bytes and checking the CSV shape


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the file's uncompressed bytes; gzip is recognised by its magic number, not its name."""
    path = Path(path)
    if not path.exists():
        raise NoshowError(f"{path}: file not found")
    if not path.is_file():
        raise NoshowError(f"{path}: not a regular file")
    return unpacked(path, path.read_bytes())


def unpacked(path, raw: bytes) -> bytes:
    """A file's bytes (``raw``, read from ``path`` or uploaded under that name), decompressed when
    gzip; an empty file is an error."""
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise NoshowError(f"{path}: broken gzip file ({exc})") from None
    if not raw.strip():
        raise NoshowError(f"{path}: file is empty")
    return raw


# Spreadsheet exports from clinics come in these encodings and separators. Detection decides only
# when the bytes leave one reading: text that is valid UTF-8 is UTF-8 (Latin-1 text with accents is
# practically never valid UTF-8), anything else is Windows-1252, the superset of Latin-1 that
# Windows spreadsheets write (its 0x80-0x9F are printable where Latin-1's are unused controls).
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class TextFormat:
    """How a CSV file's bytes are to be read: its text encoding and its field separator."""

    encoding: str
    separator: str


def decode(path, raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read with (given, or detected as described above)."""
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except LookupError:
            raise NoshowError(f"{path}: unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)") from None
        except UnicodeDecodeError as exc:
            raise NoshowError(f"{path}: not {encoding} text (bad byte at offset {exc.start}); "
                              f"try --encoding cp1252 or --encoding utf-8") from None
    if raw.startswith(UTF16_BOMS):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise NoshowError(f"{path}: broken UTF-16 text (bad byte at offset {exc.start})") from None
    if b"\0" in raw:
        offset = raw.index(b"\0")
        raise NoshowError(f"{path}: not a text CSV file (NUL byte at offset {offset}); "
                          f"if it is text in another encoding, give --encoding")
    if raw.startswith(UTF8_BOM):
        raw, name = raw[len(UTF8_BOM):], "utf-8-sig"
    else:
        name = "utf-8"
    try:
        return raw.decode("utf-8"), name
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def detect_separator(path, header: str, separator: str | None = None, known=None) -> str:
    """The field separator: given, or the one that splits the header into the most ``known``
    columns (default: the Kaggle layout's)."""
    if separator is not None:
        separator = "\t" if separator in ("tab", "\\t") else separator
        if len(separator) != 1 or separator in "\"\r\n":
            raise NoshowError(f"{path}: --sep must be one character, such as ',' ';' or tab (got {separator!r})")
        return separator
    known = set(S.ALL_COLUMNS) | {S.TRUE_PROBABILITY} if known is None else set(known)
    found = {sep: len(known & {f.strip().strip('"') for f in header.split(sep)}) for sep in SEPARATORS}
    best = max(found.values())
    winners = [sep for sep, n in found.items() if n == best]
    if best == 0 or len(winners) > 1:
        if best == 0 and header.count(",") and not any(header.count(s) for s in SEPARATORS if s != ","):
            return ","  # no known column under any separator: let the column check name what is missing
        raise NoshowError(f"{path}: cannot tell the field separator from the header line; "
                          f"give --sep (e.g. --sep ';')")
    return winners[0]


def _field_counts(text: str, separator: str) -> list[int]:
    """Number of fields on each non-empty line (quotes respected only if present)."""
    # Split on line ends only: str.splitlines also breaks at \v, \f and other separators that a
    # CSV field may hold.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if '"' not in text:
        return [line.count(separator) + 1 for line in lines]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        return [len(row) for row in reader]
    except csv.Error as exc:  # a stray carriage return or NUL inside a field
        raise NoshowError(f"line {reader.line_num + 1}: {exc}") from None


def check_shape(path: str | os.PathLike, text: str, separator: str = ",") -> None:
    """Raise if any line has a different number of fields than the header."""
    try:
        counts = _field_counts(text, separator)
    except NoshowError as exc:
        raise NoshowError(f"{path}: not a readable CSV file ({exc})") from None
    expected = counts[0]
    for line_no, count in enumerate(counts[1:], start=FIRST_DATA_LINE):
        if count != expected:
            raise NoshowError(
                f"{path}: line {line_no} has {count} fields, the header has {expected}"
            )


def read_text_frame(path: str | os.PathLike, encoding: str | None = None,
                    separator: str | None = None, known=None) -> tuple[pl.DataFrame, TextFormat]:
    """Read the file as an all-string frame, checking only that it is a well-formed CSV; return it
    with the encoding and separator it was read with (``known``: the columns expected, which
    tell the separator)."""
    return text_frame_from_bytes(path, read_bytes(path), encoding, separator, known)


def text_frame_from_bytes(path, raw: bytes, encoding: str | None = None,
                          separator: str | None = None, known=None) -> tuple[pl.DataFrame, TextFormat]:
    """:func:`read_text_frame` of a file's uncompressed bytes; ``path`` names it in messages."""
    text, used = decode(path, raw, encoding)
    if "\0" in text:
        offset = text.index("\0")
        raise NoshowError(f"{path}: text holds a NUL character at offset {offset}")
    header = text.split("\n", 1)[0]
    separator = detect_separator(path, header, separator, known)
    check_shape(path, text, separator)
    try:
        frame = pl.read_csv(io.BytesIO(text.encode("utf-8")), separator=separator, infer_schema=False,
                            truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, ValueError, OverflowError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoshowError(f"{path}: not a readable CSV file ({first_line[:200]})") from None
    return frame, TextFormat(used, separator)


# --------------------------------------------------------------------------------------------------
# Column checks


def check_columns(path, columns: list[str], required: tuple[str, ...]) -> None:
    """Raise naming each missing column, with the closest present name when it looks misspelled."""
    missing = [c for c in required if c not in columns]
    if not missing:
        return
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
        parts.append(f"'{name}'" + (f" (found '{close[0]}')" if close else ""))
    raise NoshowError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(parts)}")


@dataclass(frozen=True)
class Location:
    """Where rows come from, for error messages: the file, and the file line of row 0 (a block
    read from the middle of a large file starts further down). Prints as the file's path."""

    path: str | os.PathLike
    first_line: int = FIRST_DATA_LINE

    def __str__(self) -> str:
        return str(self.path)

    def line(self, index: int) -> int:
        return index + self.first_line


def _first_bad(raw: pl.Series, parsed: pl.Series) -> tuple[int, str] | None:
    """Index and text of the first value that was present but did not parse, if any."""
    bad = raw.is_not_null() & parsed.is_null()
    if not bad.any():
        return None
    index = int(bad.arg_true()[0])
    return index, raw[index]


def _require_present(where: Location, frame: pl.DataFrame, column: str) -> None:
    nulls = frame[column].is_null()
    if nulls.any():
        line = where.line(int(nulls.arg_true()[0]))
        raise NoshowError(
            f"{where}: column {column}: {int(nulls.sum())} missing value(s), first at line {line}"
        )


def _parse(where: Location, frame: pl.DataFrame, column: str, parsed: pl.Series, what: str) -> pl.Series:
    """Return ``parsed`` after checking every present raw value parsed; ``what`` names the type."""
    _require_present(where, frame, column)
    bad = _first_bad(frame[column], parsed)
    if bad is not None:
        index, text = bad
        raise NoshowError(
            f"{where}: column {column}, line {where.line(index)}: {text!r} is not {what}"
        )
    return parsed


def _parse_int(where: Location, frame, column: str) -> pl.Series:
    parsed = frame[column].str.strip_chars().cast(pl.Int64, strict=False)
    return _parse(where, frame, column, parsed, "an integer")


def _parse_datetime(where: Location, frame, column: str) -> pl.Series:
    parsed = (
        frame[column]
        .str.strip_chars()
        .str.to_datetime(S.DATETIME_FORMAT, strict=False, time_zone=None)
    )
    return _parse(where, frame, column, parsed, "a date-time like 2016-04-29T18:38:08Z")


def _parse_choice(where: Location, frame, column: str, allowed: dict[str, int] | tuple[str, ...]) -> pl.Series:
    _require_present(where, frame, column)
    values = frame[column].str.strip_chars()
    bad = ~values.is_in(list(allowed))
    if bad.any():
        index = int(bad.arg_true()[0])
        raise NoshowError(
            f"{where}: column {column}, line {where.line(index)}: unknown value "
            f"{values[index]!r} (expected one of {', '.join(map(repr, allowed))})"
        )
    return values


def _check_range(where: Location, column: str, values: pl.Series, low: int, high: int) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        index = int(bad.arg_true()[0])
        raise NoshowError(
            f"{where}: column {column}, line {where.line(index)}: {values[index]} is outside "
            f"{low}..{high}"
        )


def patient_keys(raw_ids: pl.Series, where: Location) -> tuple[pl.Series, int]:
    """Canonical text keys for PatientId, and how many were written in exponent form.

    Reading IDs as floats would merge distinct 15-digit IDs; we keep them as text and only rewrite
    the exponent-form ones (``9377952927E-5``) in plain decimal notation (``93779.52927``).
    """
    is_exponent = raw_ids.str.contains(_EXPONENT_ID)
    n_exponent = int(is_exponent.sum())
    if n_exponent == 0:
        return raw_ids, 0

    rows = is_exponent.arg_true().to_list()
    for i in rows:
        # An ID has tens of digits; "1E999999999" would be written out as a billion.
        if abs(Decimal(raw_ids[i]).adjusted()) > MAX_ID_DIGITS:
            raise NoshowError(f"{where}: column {S.PATIENT_ID}, line {where.line(i)}: {raw_ids[i]!r} is not an ID "
                              f"(over {MAX_ID_DIGITS} digits)")
    return raw_ids.clone().scatter(rows, [format(Decimal(raw_ids[i]), "f") for i in rows]), n_exponent


# --------------------------------------------------------------------------------------------------
# The loader


def typed_frame(path, text: pl.DataFrame, require_label: bool = True,
                first_line: int = FIRST_DATA_LINE) -> tuple[pl.DataFrame, list[Quirk]]:
    """Parse every column of an all-text frame strictly; return the typed frame with the derived
    columns, and the quirks counted. The one definition of the columns' types: the in-memory
    loader and the out-of-core reader (:mod:`noshow.data.stream`, block by block) both use it.

    ``first_line`` is the file line of ``text``'s first row, so errors name the right line.
    """
    typed = _typed_in_one_pass(path, text, require_label, first_line)
    return typed if typed is not None else _typed_checked(path, text, require_label, first_line)


_EXPONENT_ID = r"^[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+$"


# Both paths below come from the rules of :mod:`noshow.data.rules`: a rule's value is first typed
# and checked (``_valid_expression`` / ``_checked_values``), then stored (``_stored_*``).


def _stripped(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars()


def _valid_or_null(value: pl.Expr, valid: pl.Expr) -> pl.Expr:
    return pl.when(valid).then(value)


def _valid_expression(rule: ColumnRule) -> pl.Expr:
    """The rule's typed value, null wherever :func:`_checked_values` would raise."""
    text = _stripped(rule.column)
    if rule.kind == "text":
        return text
    if rule.kind == "choice":
        return _valid_or_null(text, text.is_in(list(rule.choices)))
    if rule.kind == "int":
        value = text.cast(pl.Int64, strict=False)
        checked = value
    else:
        value = text.str.to_datetime(S.DATETIME_FORMAT, strict=False, time_zone=None)
        checked = value.dt.year()
    return value if rule.valid is None else _valid_or_null(value, checked.is_between(*rule.valid))


def _stored_expression(rule: ColumnRule, value: pl.Expr) -> pl.Expr:
    if isinstance(rule.choices, dict):
        value = value.replace_strict(rule.choices, default=None, return_dtype=rule.dtype)
    if rule.clip is not None:
        value = value.clip(*rule.clip)
    return (value if rule.dtype is None else value.cast(rule.dtype)).alias(rule.name)


@functools.lru_cache(maxsize=None)
def _one_pass_expressions(label: bool, true_probability: bool) -> tuple[tuple[pl.Expr, ...], tuple[pl.Expr, ...]]:
    """:func:`_typed_in_one_pass`'s expressions: the typed columns, each null wherever its value
    fails a check of :func:`_typed_checked`, and the rows of each quirk (booleans). Built once per
    header shape (with or without the label, with or without ``true_probability``): building them
    costs more than running them on a few rows."""
    rules = (*COLUMN_RULES, LABEL_RULE) if label else COLUMN_RULES
    valid = {rule.column: _valid_expression(rule) for rule in rules}
    scheduled_date, appointment_date = (valid[c].dt.date() for c in (S.SCHEDULED_DAY, S.APPOINTMENT_DAY))
    columns = [_stored_expression(rule, valid[rule.column]) for rule in COLUMN_RULES]
    columns += [_stripped(S.PATIENT_ID).alias(S.PATIENT_KEY), scheduled_date.alias(S.SCHEDULED_DATE),
                appointment_date.alias(S.APPOINTMENT_DATE)]
    if label:
        columns.append(_stored_expression(LABEL_RULE, valid[S.LABEL]))
    quirks = ((valid[S.AGE] < 0).alias("_young"), (valid[S.AGE] > AGE_CAP).alias("_old"),
              (appointment_date < scheduled_date).alias("_early"))
    if true_probability:  # last: not checked (synthetic files only)
        columns.append(pl.col(S.TRUE_PROBABILITY).cast(pl.Float64, strict=False))
    return tuple(columns), quirks


def _typed_in_one_pass(path, text: pl.DataFrame, require_label: bool,
                       first_line: int) -> tuple[pl.DataFrame, list[Quirk]] | None:
    """:func:`_typed_checked`'s result computed in one polars pass, or None when any of its checks
    would fail: that path then finds and reports it.

    The column-by-column checks cost a polars call each, which dominates a request of a few rows;
    here each typed column is null where a check fails, so one pass types every column and a null
    count checks them all. The two paths give equal frames (tested).
    """
    if not set(S.FEATURE_COLUMNS) <= set(text.columns) or (require_label and S.LABEL not in text.columns):
        return None
    columns, quirks = _one_pass_expressions(S.LABEL in text.columns, S.TRUE_PROBABILITY in text.columns)
    frame = text.select(*columns, *quirks)
    nulls = frame.null_count().row(0, named=True)
    if any(nulls[c.meta.output_name()] for c in columns if c.meta.output_name() != S.TRUE_PROBABILITY):
        return None
    young, old, early = (int(frame[q.meta.output_name()].sum()) for q in quirks)
    # Last, as in the checking path: every other check passed, so an error here is the first either way.
    keys, n_exponent = patient_keys(frame[S.PATIENT_KEY], Location(path, first_line))
    frame = frame.drop(q.meta.output_name() for q in quirks).with_columns(keys.alias(S.PATIENT_KEY))
    return frame, _quirks(young, old, early, n_exponent)


def _quirks(young: int, old: int, early: int, exponent_ids: int) -> list[Quirk]:
    """The quirks :func:`typed_frame` counts, with what was done about each."""
    return [
        Quirk("Age -1", young, "read as age 0"),
        Quirk(f"Age over {AGE_CAP}", old, f"capped at {AGE_CAP}"),
        Quirk("appointment dated before it was scheduled", early, "lead time set to 0 days (same day)"),
        Quirk("PatientId in exponent form", exponent_ids, "kept as text, written in plain decimal"),
    ]


def _checked_values(where: Location, text: pl.DataFrame, rule: ColumnRule) -> pl.Series:
    """The rule's typed values, raising with the column and line at the first that fails it."""
    column = rule.column
    if rule.kind == "text":
        return text[column].str.strip_chars()
    if rule.kind == "choice":
        return _parse_choice(where, text, column, rule.choices)
    if rule.kind == "int":
        values = _parse_int(where, text, column)
        checked = values
    else:
        values = _parse_datetime(where, text, column)
        checked = values.dt.year()
    if rule.valid is not None:
        _check_range(where, column, checked, *rule.valid)
    return values


def _stored_values(rule: ColumnRule, values: pl.Series) -> pl.Series:
    if isinstance(rule.choices, dict):
        values = values.replace_strict(rule.choices, return_dtype=rule.dtype)
    if rule.clip is not None:
        values = values.clip(*rule.clip)
    return (values if rule.dtype is None else values.cast(rule.dtype)).rename(rule.name)


def _typed_checked(path, text: pl.DataFrame, require_label: bool, first_line: int) -> tuple[pl.DataFrame, list[Quirk]]:
    """:func:`typed_frame` column by column, each check raising with the column and the line; the
    first value reported is the first missing one in file order, else the first bad one in the
    order of :data:`~noshow.data.rules.COLUMN_RULES`."""
    where = Location(path, first_line)
    for column in S.FEATURE_COLUMNS:
        _require_present(where, text, column)
    valid = {rule.column: _checked_values(where, text, rule) for rule in COLUMN_RULES}
    columns = {rule.name: _stored_values(rule, valid[rule.column]) for rule in COLUMN_RULES}
    keys, n_exponent = patient_keys(columns[S.PATIENT_ID], where)
    scheduled_date, appointment_date = (valid[c].dt.date() for c in (S.SCHEDULED_DAY, S.APPOINTMENT_DAY))
    age = valid[S.AGE]
    quirks = _quirks(int((age < 0).sum()), int((age > AGE_CAP).sum()),
                     int((appointment_date < scheduled_date).sum()), n_exponent)
    columns[S.PATIENT_KEY] = keys.rename(S.PATIENT_KEY)
    columns[S.SCHEDULED_DATE] = scheduled_date.rename(S.SCHEDULED_DATE)
    columns[S.APPOINTMENT_DATE] = appointment_date.rename(S.APPOINTMENT_DATE)

    if S.LABEL in text.columns:
        columns[S.TARGET] = _stored_values(LABEL_RULE, _checked_values(where, text, LABEL_RULE))
    elif require_label:
        check_columns(where, text.columns, (S.LABEL,))
    if S.TRUE_PROBABILITY in text.columns:
        columns[S.TRUE_PROBABILITY] = text[S.TRUE_PROBABILITY].cast(pl.Float64, strict=False)
    frame = pl.DataFrame([s.rename(name) for name, s in columns.items()])
    return frame, quirks


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes as stored (compressed if it is compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str | os.PathLike, *, require_label: bool = True, encoding: str | None = None,
         separator: str | None = None, schema: Schema | None = None) -> Appointments:
    """Load and validate an appointments file.

    Parameters
    ----------
    path : CSV file, plain or gzip-compressed, in the Kaggle layout or described by ``schema``; or
        an HL7 FHIR R4 export (NDJSON files, or a folder of them: :mod:`noshow.data.fhir`), read
        through ``schema`` or else its default one. Errors in a FHIR table's values name the
        appointment's number in the export as its line.
    require_label : whether the outcome (``No-show``) column must be present (training and evaluation).
    encoding, separator : the file's text encoding and field separator; detected when None.
    schema : a clinic's schema file (:mod:`noshow.data.schema_file`); None for the Kaggle layout.

    Raises
    ------
    NoshowError : on any problem with the file, naming the file, column and line.
    """
    from noshow.data import fhir

    if fhir.is_fhir(path):  # an HL7 FHIR R4 export, read as a table through its schema
        table = fhir.flat_table(path)
        return _validated(path, table, require_label, fhir.sha256(path), None, first_line=1,
                          schema=schema or fhir.default_schema(table))
    text, text_format = read_text_frame(path, encoding, separator, _known(schema))
    return _validated(path, text, require_label, file_sha256(path), text_format, schema=schema)


def load_bytes(raw: bytes, name: str, *, require_label: bool = False, encoding: str | None = None,
               separator: str | None = None, schema: Schema | None = None) -> Appointments:
    """:func:`load` of a file's bytes (plain or gzip) received rather than read, e.g. uploaded;
    ``name`` stands for the path in messages, which are otherwise the same."""
    sha256 = hashlib.sha256(raw).hexdigest()
    text, text_format = text_frame_from_bytes(name, unpacked(name, raw), encoding, separator, _known(schema))
    return _validated(name, text, require_label, sha256, text_format, schema=schema)


def load_records(records: list[dict], name: str, *, require_label: bool = False,
                 schema: Schema | None = None) -> Appointments:
    """Validate appointments given as records (column name -> value, e.g. parsed JSON) exactly as
    the rows of a file: every value is read as the text a CSV would hold (numbers as written,
    ``null`` as missing), so a bad value gets the message a file would get, ``line N`` naming the
    N-th record (from 1)."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    text = pl.DataFrame({c: [_as_text(record.get(c)) for record in records] for c in columns},
                        schema={c: pl.String for c in columns})
    digest = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
    return _validated(name, text, require_label, digest, None, first_line=1, schema=schema)


def load_bundle(bundle: dict, name: str, *, require_label: bool = False, schema: Schema | None = None) -> Appointments:
    """Validate the appointments of a FHIR ``Bundle`` (e.g. a request's JSON body) as an export's
    rows (:mod:`noshow.data.fhir`), through ``schema`` or else the FHIR default."""
    from noshow.data import fhir

    table = fhir.table_of(fhir.bundle_resources(bundle, name), name)
    digest = hashlib.sha256(json.dumps(bundle, sort_keys=True).encode()).hexdigest()
    return _validated(name, table, require_label, digest, None, first_line=1,
                      schema=schema or fhir.default_schema(table))


def _as_text(value) -> str | None:
    """A record's value as a CSV field: strings as they are, None missing, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _known(schema: Schema | None):
    """The columns a file read through ``schema`` is expected to have (None: the Kaggle layout's)."""
    return None if schema is None else roles.mapped_columns(schema, require_label=True)


def _validated(path, text: pl.DataFrame, require_label: bool, sha256: str, text_format: "TextFormat | None",
               first_line: int = FIRST_DATA_LINE, schema: Schema | None = None) -> Appointments:
    """The checks every loaded table passes: columns, at least one row, every value typed."""
    if schema is None:
        required = S.ALL_COLUMNS if require_label else S.FEATURE_COLUMNS
    else:
        required = roles.mapped_columns(schema, require_label)
    check_columns(path, text.columns, required)
    if text.height == 0:
        raise NoshowError(f"{path}: the header has no data rows below it")
    if schema is None:
        frame, quirks = typed_frame(path, text, require_label, first_line)
    else:
        frame, quirks = export_typed_frame(path, text, schema, require_label, first_line)
        if frame.height == 0:
            raise NoshowError(f"{path}: no row is left once the outcomes left out are removed")
    return Appointments(frame=frame, source=str(path), sha256=sha256, quirks=quirks, text_format=text_format,
                        schema=schema)


def export_typed_frame(path, text: pl.DataFrame, schema: Schema, require_label: bool = True,
                       first_line: int = FIRST_DATA_LINE) -> tuple[pl.DataFrame, list[Quirk]]:
    """:func:`typed_frame` of an export read through ``schema`` (:func:`noshow.data.roles.export_frame`),
    with its patient keys; a value that does not fit is a :class:`NoshowError` naming the column
    and the file line."""
    where = Location(path, first_line)
    try:
        frame, counted = roles.export_frame(text, schema, require_label)
    except roles.Misfit as misfit:
        found = "blank" if misfit.text is None else repr(misfit.text)
        raise NoshowError(f"{where}: column {misfit.column}, line {where.line(misfit.index)}: "
                          f"{found} is not {misfit.what}") from None
    keys, n_exponent = patient_keys(frame[S.PATIENT_ID], where)
    frame = frame.with_columns(keys.alias(S.PATIENT_KEY))
    quirks = [Quirk(name, count, handling) for name, count, handling in counted]
    quirks.append(Quirk("patient ID in exponent form", n_exponent, "kept as text, written in plain decimal"))
    return frame, quirks


def duplicate_ids(data: Appointments, shown: int = 5) -> tuple[int, list[int]]:
    """How many rows repeat an earlier row's ``AppointmentID``, and the file lines of the first
    ``shown`` of them (file lines as in every message: header is line 1)."""
    repeated = data.frame[S.APPOINTMENT_ID].is_duplicated() & ~data.frame[S.APPOINTMENT_ID].is_first_distinct()
    rows = repeated.arg_true().head(shown).to_list()
    return int(repeated.sum()), [r + FIRST_DATA_LINE for r in rows]


def describe_duplicates(data: Appointments) -> str | None:
    """One line about repeated AppointmentIDs, or None when every ID is unique."""
    count, lines = duplicate_ids(data)
    if not count:
        return None
    where = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
    return f"{data.source}: {count} row(s) repeat an earlier AppointmentID (lines {where})"


def check_trainable(data: Appointments, min_rows: int = 50, min_per_class: int = 10) -> None:
    """Raise unless ``data`` has labels, unique appointment IDs, enough rows and enough of both
    classes to train on."""
    duplicates = describe_duplicates(data)
    if duplicates:
        raise NoshowError(duplicates + "; an appointment must appear once to be learnt from once")
    if not data.has_label:
        label = S.LABEL if data.schema is None else data.schema.columns.get("outcome", "(the outcome role)")
        raise NoshowError(f"{data.source}: missing column '{label}' needed for training")
    if len(data) < min_rows:
        raise NoshowError(
            f"{data.source}: {len(data)} rows is too few to train (at least {min_rows} needed)"
        )
    positives = int(data.frame[S.TARGET].sum())
    for name, count in (("no-show", positives), ("show", len(data) - positives)):
        if count < min_per_class:
            raise NoshowError(
                f"{data.source}: only {count} '{name}' rows; training needs at least "
                f"{min_per_class} of each class"
            )
