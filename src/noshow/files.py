"""Atomic output files: a command that fails leaves no output file behind, whole or partial."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from noshow.errors import NoshowError


def check_writable_parent(path: str | os.PathLike) -> Path:
    """Raise a user error unless ``path``'s folder exists (we never create folders for a file)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NoshowError(f"{path}: folder {parent} does not exist")
    if path.is_dir():
        raise NoshowError(f"{path}: is a folder, expected a file name")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``path``'s suffix by default, because some writers (numpy.savez,
    matplotlib) choose the format from it.
    """
    path = check_writable_parent(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    # mkstemp creates the file private (0600); an output file gets the usual mode, 0666 less umask.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, value, indent: int = 2) -> Path:
    """Write ``value`` as JSON to ``path`` atomically (the previous file or the whole new one)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=indent))
    return Path(path)


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; if the block succeeds, it replaces ``path`` whole.

    A run killed at any moment leaves the previous complete folder or none, never a mix of old and
    new files. ``path`` may exist only as a folder this program wrote before (it holds ``marker``) or
    an empty one: replacing a folder deletes what was in it, so anything else is refused.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NoshowError(f"{path}: folder {parent} does not exist")
    if path.exists() and not path.is_dir():
        raise NoshowError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise NoshowError(f"{path}: folder holds files that are not an earlier output (no {marker}); "
                          f"choose a new or empty folder")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
