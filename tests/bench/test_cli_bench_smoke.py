"""`python -m bench --suite cli --quick` runs and reports every command (SkyPilot left out: slow to install)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cli_bench_quick(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--suite", "cli", "--quick", "--cli-no-sky", "--cli-runs",
                           "2", "--results-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads((tmp_path / "cli-latest.json").read_text())
    assert {"awan --help", "awan --version", "awan get workloads"} <= set(res["commands"])
    assert all(v["runs"] == 2 and v["median_s"] > 0 and v["cpu_median_s"] > 0 for v in res["commands"].values())
    assert len(res["load_average_before"]) == 3
