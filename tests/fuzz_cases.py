"""Generated bad inputs for noshow, and the one property they must all satisfy.

The property: a command either succeeds (exit 0) or fails as a user's mistake should: exit status
2, one line ``noshow: error: ...`` on stderr (after any ``noshow: note/warning`` lines), no
traceback, and none of its output files left behind. A crash (an exception other than a user
error) propagates out of :func:`run_and_check`, which is how Hypothesis reports it.

Used by ``tests/test_fuzz.py`` (a bounded number of examples in CI) and ``bench/fuzz`` (many more).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from noshow.cli import build_parser, main

NOTE_PREFIXES = ("noshow: note:", "noshow: warning:")
ERROR_PREFIX = "noshow: error: "

# Values that break parsers: empty, huge, signed, non-finite, out-of-range dates, control bytes,
# separators, quotes and newlines inside a field, non-ASCII text.
NASTY_FIELDS = [
    "", " ", "-1", "0", "1e309", "9" * 40, "-9" * 20, "nan", "inf", "NULL", "None", "1.5", "0x1F",
    "2016-13-45T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1677-09-21T00:12:43Z",
    "2262-04-11T23:47:17Z", "2016-04-29", "29/04/2016", "\x00", "\x01\x02\x1b[31m", "a,b", "a;b",
    '"quoted, with comma"', '"unterminated', 'say ""hi""', "line\nbreak", "line\r\nbreak", "\t",
    "ÁÉÍÓÚ çãõ", "\ufeff", "\u202e", "😀",
]


def _field_text(draw, max_bytes: int) -> str:
    kind = draw(st.sampled_from(["nasty", "text", "long", "number"]))
    if kind == "nasty":
        return draw(st.sampled_from(NASTY_FIELDS))
    if kind == "text":
        return draw(st.text(max_size=20))
    if kind == "long":
        return draw(st.sampled_from("x9,\"\n")) * draw(st.integers(0, max_bytes))
    return str(draw(st.one_of(st.integers(-(10**30), 10**30), st.floats(allow_nan=True))))


@st.composite
def mutated_csv(draw, base: bytes, max_field_bytes: int = 100_000) -> bytes:
    """``base`` (a valid appointments CSV) with one to three mutations applied."""
    data = base
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["field", "field", "truncate", "header", "insert", "flip", "drop_line",
                                     "extra_field", "encoding"]))
        lines = data.split(b"\n")
        if kind == "field" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            fields = lines[i].split(b",")
            j = draw(st.integers(0, len(fields) - 1))
            fields[j] = _field_text(draw, max_field_bytes).encode("utf-8", "surrogatepass")
            lines[i] = b",".join(fields)
            data = b"\n".join(lines)
        elif kind == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif kind == "header" and len(lines) > 1:
            data = b"\n".join([*lines[:draw(st.integers(1, len(lines)))], lines[0], *lines[1:]][:len(lines) + 1])
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif kind == "drop_line" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif kind == "extra_field" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = lines[i] + b",extra"
            data = b"\n".join(lines)
        elif kind == "encoding":
            data = data.decode("utf-8", "replace").encode(draw(st.sampled_from(["utf-16", "cp1252", "utf-8-sig"])),
                                                          "replace")
    return data


@st.composite
def mutated_model(draw, base: Path) -> bytes:
    """A model file (bytes) broken in one way: bytes flipped or cut, metadata JSON edited, or an
    array replaced by one of the wrong shape or dtype (with its digest recomputed, so that the
    shape and dtype checks, not the digest, must catch it)."""
    raw = base.read_bytes()
    kind = draw(st.sampled_from(["flip", "truncate", "metadata", "array"]))
    if kind == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    if kind == "truncate":
        return raw[:draw(st.integers(0, len(raw) - 1))]
    from noshow.model import METADATA_DIGEST_KEY, METADATA_KEY, metadata_digest, weights_digest

    with np.load(base, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays[METADATA_KEY].tobytes())
    if kind == "metadata":
        key = draw(st.sampled_from(sorted(meta)))
        meta[key] = draw(st.one_of(st.none(), st.integers(-5, 10**12), st.text(max_size=8), st.just([]),
                                   st.just({}), st.floats(allow_nan=True)))
        if draw(st.booleans()):
            meta.pop(key)
        if draw(st.booleans()):  # re-signed: the fields' own checks must refuse what is wrong
            meta[METADATA_DIGEST_KEY] = metadata_digest(meta)
    else:
        names = sorted(n for n in arrays if n != METADATA_KEY)
        name = draw(st.sampled_from(names))
        a = arrays[name]
        arrays[name] = draw(st.sampled_from([a.astype(np.float16), a.astype(np.int64), a.ravel()[:-1],
                                             np.zeros((*a.shape, 2), a.dtype), np.full_like(a, np.nan),
                                             a.reshape(-1)[::-1].reshape(a.shape).T if a.ndim == 2 else a[:0]]))
        meta["weights_sha256"] = weights_digest({n: v for n, v in arrays.items() if n != METADATA_KEY})
        if draw(st.booleans()):  # a forger who also recomputes the metadata digest: shape checks must hold
            meta[METADATA_DIGEST_KEY] = metadata_digest(meta)
    arrays[METADATA_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _option_flags(command: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # noqa: SLF001
    return sorted(flag for action in sub._actions for flag in action.option_strings if flag.startswith("--"))  # noqa: SLF001


FLAG_VALUES = ["-1", "0", "1", "2", "0.5", "-0.5", "1.5", "nan", "inf", "-inf", "1e309", "", "abc", "8,4",
               ",,", "0,8", "cuda", "cpu", "relu", "focal", "time", "patient", "🙂", "--", "-"]


@st.composite
def flag_argv(draw, command: str, fixed: list[str]) -> list[str]:
    """``noshow COMMAND FIXED...`` plus up to four of the command's own flags with odd values.
    Values are small, so a valid combination still runs in seconds."""
    flags = [f for f in _option_flags(command) if f not in ("--help", "--out", "--data", "--model", "--history",
                                                            "--html", "--stream", "--db")]
    argv = [command, *fixed]
    for _ in range(draw(st.integers(1, 4))):
        argv.append(draw(st.sampled_from(flags)))
        if draw(st.integers(0, 9)):
            argv.append(draw(st.sampled_from(FLAG_VALUES)))
    return argv


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_and_check(argv: list[str], outputs: list[Path]) -> Outcome:
    """Run ``noshow ARGV`` in this process and assert the property above; returns what it printed."""
    for path in outputs:
        if path.is_dir():
            continue
        path.unlink(missing_ok=True)
    saved = os.environ.pop("NOSHOW_DATA", None)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # --help / --version only
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        if saved is not None:
            os.environ["NOSHOW_DATA"] = saved
    outcome = Outcome(code, out.getvalue(), err.getvalue())
    assert code in (0, 2), (argv, outcome)
    assert "Traceback" not in outcome.stderr, (argv, outcome.stderr)
    if code == 2:
        lines = outcome.stderr.strip().splitlines()
        assert lines and lines[-1].startswith(ERROR_PREFIX), (argv, outcome.stderr)
        assert all(line.startswith(NOTE_PREFIXES) for line in lines[:-1]), (argv, outcome.stderr)
        left = [p for p in outputs if p.exists()]
        assert left == [], (argv, left)
    return outcome


def valid_zip(raw: bytes) -> bool:
    """Whether ``raw`` still opens as a zip archive (for reporting what a case exercised)."""
    try:
        zipfile.ZipFile(io.BytesIO(raw)).testzip()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not a valid zip"
        return False
