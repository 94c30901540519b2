"""`awan simulate` through the CLI: the report on stdout and in files, bad input as one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controlplane.cli.main import app

SCENARIO = """start: 2026-01-01
end: 2026-01-11
contracts:
  - {name: aws-h100, provider: aws, gpuModel: H100, gpus: 16, start: 2026-01-01, end: 2026-01-11,
     pricePerGpuHour: 2.0, region: us-east-1, instanceType: p5.48xlarge}
trace: {file: trace.csv}
"""


def _files(tmp_path: Path) -> Path:
    (tmp_path / "trace.csv").write_text("at,gpus,gpuModel,hours\n0,16,H100,24\n1,8,H100,10\n")
    (tmp_path / "s.yaml").write_text(SCENARIO)
    return tmp_path / "s.yaml"


def test_simulate_prints_and_writes_the_report(tmp_path: Path) -> None:
    s = _files(tmp_path)
    out = CliRunner().invoke(app, ["simulate", str(s), "--json", str(tmp_path / "r.json"),
                                   "--html", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    assert "2 workloads, 2 placed" in out.output and "contract aws-h100: 12.1% used" in out.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["reserved"][0]["usedGpuHours"] == 16 * 24 + 8 * 10 and report["cost"]["total"] == 7680.0
    page = (tmp_path / "r.html").read_text()
    assert '<canvas id=weekly>' in page and "$7,680" in page and "new Chart(" in page
    js = CliRunner().invoke(app, ["simulate", str(s), "--delay", "aws=1d", "-o", "json"])
    assert js.exit_code == 0 and json.loads(js.output)["waiting"]["maxHours"] == 47.0   # b: from hour 1 to 48


def test_simulate_bad_input_is_one_line(tmp_path: Path) -> None:
    s = _files(tmp_path)
    bad = CliRunner().invoke(app, ["simulate", str(s), "--delay", "aws"])
    assert bad.exit_code == 1 and "--delay 'aws'" in bad.output and "Traceback" not in bad.output
    (tmp_path / "s.yaml").write_text(SCENARIO.replace("gpus: 16", "gpus: -3"))
    bad = CliRunner().invoke(app, ["simulate", str(s)])
    assert bad.exit_code == 1 and "contracts.0.gpus" in bad.output
    bad = CliRunner().invoke(app, ["simulate", str(tmp_path / "none.yaml")])
    assert bad.exit_code == 1 and "no such file" in bad.output
