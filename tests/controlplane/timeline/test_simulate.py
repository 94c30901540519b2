"""``awan simulate`` against traces small enough to work out by hand (issue 10)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controlplane.timeline.scenario import ScenarioError, delayed, load_scenario, parse_delay
from controlplane.timeline.simulate import Simulation, summarize
from controlplane.timeline.trace import generate, read_trace
from providers.catalog import default_catalog

START = datetime(2026, 1, 1, tzinfo=UTC)


def _run(tmp_path: Path, scenario: str, trace: str) -> dict:
    (tmp_path / "trace.csv").write_text(trace)
    (tmp_path / "s.yaml").write_text(scenario)
    s = load_scenario(tmp_path / "s.yaml")
    arrivals = read_trace(tmp_path / "trace.csv", s.doc.start)
    return summarize(Simulation(s, default_catalog(), arrivals).run())


CONTRACT = """start: 2026-01-01
end: 2026-01-11
contracts:
  - {name: aws-h100, provider: aws, gpuModel: H100, gpus: 16, start: 2026-01-01, end: 2026-01-11,
     pricePerGpuHour: 2.0, region: us-east-1, instanceType: p5.48xlarge}
trace: {file: trace.csv}
"""
TRACE = """at,gpus,gpuModel,hours,name
0,16,H100,24,a
1,8,H100,10,b
30,8,H100,10,c
50,32,H100,5,d
"""


def test_contract_only_by_hand(tmp_path: Path) -> None:
    r = _run(tmp_path, CONTRACT, TRACE)
    # a: 16 GPUs 0-24 h; b waits 23 h and runs 24-34 h; c runs 30-40 h at once; d (32 GPUs) never fits
    assert (r["workloads"], r["placed"], r["finished"]) == (4, 3, 3)
    assert r["failed"]["neverFits"] == 1 and r["failed"]["waitedTooLong"] == 0
    [c] = r["reserved"]
    assert c["usedGpuHours"] == 16 * 24 + 8 * 10 + 8 * 10                 # 544
    assert c["committedGpuHours"] == 16 * 240
    assert c["utilisation"] == round(544 / 3840, 4)
    assert c["wasteGpuHours"] == 3840 - 544 and c["wasteDollars"] == (3840 - 544) * 2.0
    assert r["cost"] == {"total": 7680.0, "reserved": 7680.0, "onDemand": 0.0}   # take-or-pay: all of it
    assert r["waiting"]["waited"] == 1 and r["waiting"]["maxHours"] == 23.0
    assert r["waiting"]["meanHours"] == round(23 / 3, 3)
    assert r["providers"] == {"aws": {"gpuHours": 544.0, "share": 1.0}}


BLOCK = """start: 2026-01-01
end: 2026-01-11
blocks:
  - {name: cb-march, provider: aws, region: us-east-1, instanceType: p5.48xlarge, nodes: 1,
     start: 2026-01-03, end: 2026-01-04, pricePerHour: 31.0}
trace: {file: trace.csv}
"""


def test_block_is_waited_for_and_a_run_on_it_is_moved_at_its_end(tmp_path: Path) -> None:
    r = _run(tmp_path, BLOCK, "at,gpus,gpuModel,hours,name\n40,8,H100,10,e\n60,8,H100,20,f\n")
    # e waits 8 h for the block (48 h) and runs 48-58 h; f runs 60-72 h, is moved at the block's end
    # with 8 h left, and nothing else can hold it
    [b] = r["reserved"]
    assert b["usedGpuHours"] == 8 * 10 + 8 * 12
    assert b["committedGpuHours"] == 8 * 24 and b["cost"] == 31.0 * 24
    assert b["wasteGpuHours"] == 16 and b["wasteDollars"] == 16 * 31.0 / 8
    assert r["moved"] == 1 and r["failed"]["stillQueuedAtEnd"] == 1
    assert r["waiting"]["maxHours"] == 8.0 and r["placed"] == 2 and r["finished"] == 1


def test_delay_moves_a_providers_capacity_later(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(CONTRACT)
    (tmp_path / "trace.csv").write_text(TRACE)
    s = delayed(load_scenario(tmp_path / "s.yaml"), dict([parse_delay("aws=2d")]))
    r = summarize(Simulation(s, default_catalog(), read_trace(tmp_path / "trace.csv", s.doc.start)).run())
    # nothing runs before hour 48: a waits 48 h (48-72), then b (72-82) and c (72-82) together
    assert r["waiting"]["maxHours"] == 71.0
    assert r["reserved"][0]["committedGpuHours"] == 16 * 192        # 8 of the 10 days are left in the window
    with pytest.raises(ScenarioError, match="aws=soon"):
        parse_delay("aws=soon")


@pytest.mark.parametrize(("text", "field"), [
    ("start: 2026-01-02\nend: 2026-01-01\ntrace: {file: t.csv}\n", "end"),
    ("start: 2026-01-01\nend: 2026-01-02\ntrace: {}\n", "trace"),
    ("start: 2026-01-01\nend: 2026-01-02\ntrace: {file: t.csv}\ncontracts: [{name: x, provider: aws}]\n",
     "contracts.0.gpuModel"),
    ("start: 2026-01-01\nend: 2026-01-02\ntrace: {file: t.csv}\nsurprise: 1\n", "surprise"),
])
def test_bad_scenario_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        load_scenario(tmp_path / "s.yaml")


def test_bad_trace_row_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("at,gpus,gpuModel,hours\n0,8,H100,2\n1,eight,H100,2\n")
    with pytest.raises(ScenarioError, match=r"t\.csv:3"):
        read_trace(tmp_path / "t.csv", START)


def test_generator_is_deterministic_and_in_the_window() -> None:
    from controlplane.timeline.scenario import GenerateDoc

    g = GenerateDoc(workloads=500, seed=3)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    a, b = list(generate(g, START, end)), list(generate(g, START, end))
    assert a == b and len(a) == 500
    assert all(START <= x.at < end for x in a) and [x.at for x in a] == sorted(x.at for x in a)
    assert {x.gpus for x in a} <= {8, 16, 64, 144, 576}
