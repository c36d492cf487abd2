"""The runnable examples run, and show what they claim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_moons_example_trains_the_twins_to_the_same_weights_and_saves_its_figure(tmp_path):
    figure = tmp_path / "two_moons.png"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "two_moons.py"), "--out", str(figure),
                             "--epochs", "12"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    gaps = [float(g) for g in re.findall(r"largest weight difference (\S+)", result.stdout)]
    assert len(gaps) == 3 and max(gaps) < 1e-9
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
