"""Shared fixtures: the real Kaggle file (when available) and small synthetic files."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from noshow.data import loader, synth

REAL_DATA = os.environ.get(loader.DATA_ENV)
# The staff page's tests drive Debian's Chromium through Playwright (which downloads no browser).
CHROMIUM = os.environ.get("NOSHOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """Path of the real file from $NOSHOW_DATA; tests that need it skip where it is absent."""
    if not REAL_DATA or not Path(REAL_DATA).exists():
        pytest.skip("real data not available (set NOSHOW_DATA)")
    return Path(REAL_DATA)


@pytest.fixture(scope="session")
def real_data(real_data_path) -> loader.Appointments:
    return loader.load(real_data_path)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory) -> Path:
    """A 3,000-row synthetic file in the Kaggle schema."""
    return synth.write_synthetic(tmp_path_factory.mktemp("synth") / "small.csv", rows=3000, seed=7)


@pytest.fixture(scope="session")
def small_data(small_csv) -> loader.Appointments:
    return loader.load(small_csv)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m noshow ARGS`` in a fresh process, as a user would."""
    env = {k: v for k, v in os.environ.items() if k != loader.DATA_ENV}
    return subprocess.run(
        [sys.executable, "-m", "noshow", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def run_main(*args: str) -> subprocess.CompletedProcess:
    """Run ``noshow ARGS`` in this process (``noshow.cli.main``), as fast as a function call.

    Returns what :func:`run_cli` returns, so that a test can use either; the subprocess form stays
    for what only a fresh process shows (exit status through the interpreter, import cost).
    """
    from noshow.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.pop(loader.DATA_ENV, None)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help and --version
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        if saved is not None:
            os.environ[loader.DATA_ENV] = saved
    return subprocess.CompletedProcess(["noshow", *args], code, out.getvalue(), err.getvalue())


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2 and exactly one stderr line ``noshow: error: ...`` holding ``fragments``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("noshow: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def tiny_model_file(small_csv, tmp_path_factory) -> Path:
    """One network of 8 hidden units trained for 2 epochs on :func:`small_csv`, once per session:
    a model for the tests of what surrounds one (the service, the store, the staff page)."""
    path = tmp_path_factory.mktemp("tiny-model") / "model.npz"
    result = run_main("train", "--data", str(small_csv), "--out", str(path), "--epochs", "2", "--hidden", "8",
                      "--members", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless :data:`CHROMIUM` under Playwright, for one test module: Playwright's sync API keeps an
    event loop running in this thread while it is open, which later tests' ``asyncio.run`` refuses."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra has it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(process: subprocess.Popen, base: str, log: Path, timeout: float = 30) -> None:
    """Return once the service at ``base`` answers ``/health``; fail, showing its ``log``, if its
    ``process`` ends or ``timeout`` seconds pass first."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@contextlib.contextmanager
def served(args: list[str], log: Path, timeout: float = 30):
    """``noshow serve ARGS`` in its own process on a free 127.0.0.1 port, as a user starts it; yields
    its base URL once ``/health`` answers, and stops it after. Its output goes to ``log``."""
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "noshow", "serve", *args, "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(process, base, log, timeout)
        yield base
    finally:
        process.terminate()
        process.wait(10)

