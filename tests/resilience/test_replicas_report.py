"""The resilience report's replica mode, small: three `awan serve` replicas on one PostgreSQL bring up a
dozen workloads over the five mock clouds while three SIGKILLs (each at the leader or a stack lease holder,
the replica restarted) land at random moments. The zeros: nothing lost, nothing duplicated, no orphans,
live nodes == assigned nodes, and no two replicas (nor two lives of one) changed one stack at the same
time, by every mock's request log. Generous, condition-based waits only."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockclouds.launcher import MockClouds
from tests.controlplane.store.dbfixture import PgSchema
from tests.resilience.replicas import GroupSpec, Kills, check_logs
from tests.resilience.scenarios import Env, controller_kills

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(2400)]


def _log_tails(workdir: Path, lines: int = 40) -> str:
    return "\n".join(f"--- {p.name} (last {lines} lines) ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                     for p in sorted(workdir.glob("r*.log")))


def test_three_replicas_three_sigkills_all_zeros(tmp_path: Path) -> None:
    schema = PgSchema().create()
    kills = Kills(3, seed=11)
    try:
        with MockClouds() as clouds:
            env = Env(clouds, tmp_path, db_url=schema.url, group=GroupSpec(kills, replicas=3))
            try:
                # Each bounded wait (Running, settled, assigned == live) within 600 s, so a run that does not
                # converge fails with the late workloads and the replicas' logs, not a bare pytest timeout.
                fig = controller_kills(env, workloads=12, kills=3, timeout_s=600)
            except (AssertionError, RuntimeError) as e:
                raise AssertionError(f"{e}\n{_log_tails(tmp_path)}") from e
            logs = check_logs(clouds)
    finally:
        schema.drop()
    assert len(kills.done) == 3, kills.done
    assert fig.values["controller kills survived"] == 3
    bad = [str(v) for v in fig.verdicts if not v.ok]
    assert bad == []
    assigned, live = fig.values["nodes assigned / live after controller kills"].split(" / ")
    assert assigned == live == "12"
    assert sum(logs.writes.values()) > 0 and not any(logs.unnamed.values()), (logs.writes, logs.unnamed)
    assert logs.overlap_count == 0, {c: p[:3] for c, p in logs.overlaps.items() if p}
