"""`awan deploy` (local engine) SIGKILLed at random moments while it creates, then while it deletes; run
again to the end, the mock clouds hold exactly the planned machines: no duplicate, no orphan. Real
processes and a real kill: nothing here injects the crash."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from controlplane.model.identity import workload_key
from tests.resilience.harness import NODE_KINDS, _live_nodes, _workload_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]   # real processes: a loaded machine takes long
REPO = Path(__file__).resolve().parents[3]


def _awan(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "controlplane.cli.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _machines(clouds) -> Counter[str]:
    """Live machines per workload tag over the four mock clouds."""
    out: Counter[str] = Counter()
    for cloud in clouds.servers:
        for r in clouds.backend(cloud).inventory():
            if str(r.get("kind", "")).lower() in NODE_KINDS and _live_nodes(r) and _workload_of(r):
                out[_workload_of(r)] += 1
    return out


def _deploy_killed(plan: Path, cfg: Path, state: Path, env: dict[str, str], rnd: random.Random, kills: int) -> int:
    done = 0
    for _ in range(kills):
        p = _awan("deploy", "--plan", str(plan), "--config", str(cfg), "--state-dir", str(state),
                  "--engine", "local", env=env)
        time.sleep(rnd.uniform(1.5, 5.0))        # the imports take about a second: land inside the run
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            done += 1
        p.communicate(timeout=60)
    return done


def _deploy(plan: Path, cfg: Path, state: Path, env: dict[str, str]) -> dict:
    p = _awan("deploy", "--plan", str(plan), "--config", str(cfg), "--state-dir", str(state), "--engine", "local",
              "--json", env=env)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def _totals(result: dict) -> dict[str, int]:
    return {k: sum(s["counts"][k] for s in result["stacks"]) for k in ("create", "update", "delete")}


def test_deploy_killed_mid_create_and_mid_delete_leaves_no_duplicate_or_orphan(tmp_path, mockclouds):
    cfg = mockclouds.write_config(tmp_path / "awan.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    names = [f"kw-{i}" for i in range(8)]
    clouds = ["aws", "gcp", "azure", "coreweave"]
    (tmp_path / "w.yaml").write_text("\n---\n".join(
        f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {n}, team: t}}\n"
        f"spec: {{kind: inference, gpus: {{model: [H100, H200], count: 8, perNode: 8}}, replicas: 2,"
        f" location: {{regions: ['{clouds[i % 4]}:*']}}}}\n"
        for i, n in enumerate(names)))
    p = _awan("plan", "-f", str(tmp_path / "w.yaml"), "--policies", str(REPO / "policies"),
              "--capacity", "live", "--config", str(cfg), "-o", "json", env=env)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]
    plan = json.loads(out)
    want = Counter()
    for pl in plan["placements"]:
        assert pl["placed"], pl
        assert pl["team"] == "t", pl                    # the plan carries the team: machines get its key
        want[workload_key(pl["team"], pl["workload"])] += pl["nodes"]
    assert {pl["provider"] for pl in plan["placements"]} == set(clouds)
    full = tmp_path / "plan.json"
    full.write_text(json.dumps(plan))
    state = tmp_path / "state"
    rnd = random.Random(11)

    killed = _deploy_killed(full, cfg, state, env, rnd, kills=5)
    assert killed >= 3                                   # most kills landed inside a run
    first = _deploy(full, cfg, state, env)
    assert _machines(mockclouds) == want
    assert _totals(_deploy(full, cfg, state, env)) == {"create": 0, "update": 0, "delete": 0}

    # Half the workloads go: kill the deletes too, then finish.
    keep = set(names[: len(names) // 2])
    half = tmp_path / "half.json"
    half.write_text(json.dumps({**plan, "placements": [pl for pl in plan["placements"] if pl["workload"] in keep]}))
    _deploy_killed(half, cfg, state, env, rnd, kills=2)
    _deploy(half, cfg, state, env)
    keys = {workload_key("t", n) for n in keep}
    assert _machines(mockclouds) == Counter({w: n for w, n in want.items() if w in keys})
    assert first["stacks"]
