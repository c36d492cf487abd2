"""Atomic output files: a command that fails leaves no output file behind, whole or partial."""

from __future__ import annotations

import contextlib
import os
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


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
