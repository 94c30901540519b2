"""`python -m bench --suite plan --quick` plans end to end in fresh processes and reports each figure
(SkyPilot left out: slow to install). Figures are not judged here (speed lives in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from bench.plan.manifests import manifest_docs
from controlplane.model.manifest import parse_documents

REPO = Path(__file__).resolve().parents[2]


def test_plan_bench_manifests_are_valid_and_deterministic() -> None:
    docs = manifest_docs(40)
    assert docs == manifest_docs(40) and docs != manifest_docs(40, seed=1)
    ws = parse_documents(list(yaml.safe_load_all(yaml.safe_dump_all(docs))))
    assert len(ws) == 40 and len({w.name for w in ws}) == 40


def test_plan_bench_quick(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--suite", "plan", "--quick", "--plan-no-sky",
                           "--plan-sizes", "30", "--results-dir", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    res = json.loads((tmp_path / "plan-latest.json").read_text())
    row = res["ours"]["30"]
    assert set(row) == {"json", "table"}
    for fmt in ("json", "table"):
        m = row[fmt]["median"]
        assert m["wall_s"] > 0 and m["cpu_s"] > 0 and m["rss_mib"] > 0 and m["bytes"] > 0
    assert len(res["load_average"]["start"]) == 3 and "skypilot" not in res
