"""The README's what-if walk runs verbatim (the commands a capacity planner would type) and says what it
promises: the cost of AWS arriving late, the share and the wait."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _block() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## What-if: capacity over time", 1)[1]
    m = re.search(r"^```bash\n(.*?)^```", section, re.M | re.S)
    assert m is not None, "no bash block in the README's what-if section"
    return m.group(1)


def test_readme_what_if_walk_runs_verbatim(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", _block()], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    base = json.loads((tmp_path / "baseline.json").read_text())
    late = json.loads((tmp_path / "aws-late.json").read_text())
    assert base["workloads"] == late["workloads"] == 5000
    assert "<canvas id=weekly>" in (tmp_path / "aws-late.html").read_text()
    delta = late["cost"]["total"] - base["cost"]["total"]
    m = re.search(r"AWS 90 days late: total ([+-][\d,]+) USD, on-demand ([+-][\d,]+) USD; "
                  r"AWS share ([\d.]+)% -> ([\d.]+)%", done.stdout)
    assert m is not None, done.stdout
    assert int(m.group(1).replace(",", "")) == round(delta)
    assert int(m.group(2).replace(",", "")) == round(late["cost"]["onDemand"] - base["cost"]["onDemand"])
    # the AWS contract starts 90 days later: less of the year runs on AWS
    assert float(m.group(4)) < float(m.group(3))
