"""`mypy --strict controlplane` is clean (issue 14): the loop's joints are typed, so a reader and the
tools see how data travels. Slow: mypy reads the whole package and what it imports (minutes here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mypy_strict_is_clean_on_controlplane() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "controlplane"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1700)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout
