"""The documentation: its tables of measured numbers come from the saved results, and it speaks of
targets, never of issue numbers a reader of the repository cannot see."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUE_REFERENCE = re.compile(r"\bissues?\s*#?\d+\b", re.IGNORECASE)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / line for line in listed.splitlines()]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:4096]]


def test_documented_tables_match_the_saved_results():
    checked = subprocess.run([sys.executable, str(ROOT / "bench" / "tables"), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_tracked_file_refers_to_an_issue_number():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in _tracked_text_files()
                 for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if ISSUE_REFERENCE.search(line)]
    assert offenders == []
