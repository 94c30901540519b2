"""`--wait=STATE` is reached by a workload at that state or past it on the way forward: a capacity reservation
goes Placed -> Provisioning -> Running between two polls (the README walk met exactly that in CI)."""

from __future__ import annotations

import pytest
import typer

from controlplane.cli import resource_cmds


def _serve(monkeypatch: pytest.MonkeyPatch, states: dict[str, str]) -> None:
    def fake(method: str, path: str, **_: object) -> dict[str, str]:
        name = path.rsplit("/", 1)[-1]
        return {"name": name, "state": states[name], "message": "m"}
    monkeypatch.setattr(resource_cmds, "request_or_error", fake)
    monkeypatch.setattr(resource_cmds.time, "sleep", lambda _s: None)


@pytest.mark.parametrize("now", ["Placed", "Provisioning", "Starting", "Running", "Succeeded"])
def test_waiting_for_placed_is_over_once_placed_or_past(monkeypatch, capsys, now: str) -> None:
    _serve(monkeypatch, {"w": now})
    resource_cmds.wait_for(["w"], "Placed", timeout=5)
    assert capsys.readouterr().out == f"workload/w {now.lower()}\n"


@pytest.mark.parametrize(("want", "now"), [("Placed", "Pending"), ("Running", "Provisioning"),
                                           ("Succeeded", "Running"), ("Deleted", "Running")])
def test_a_state_not_yet_reached_times_out(monkeypatch, want: str, now: str) -> None:
    _serve(monkeypatch, {"w": now})
    with pytest.raises(typer.Exit) as e:
        resource_cmds.wait_for(["w"], want, timeout=1e-9)
    assert e.value.exit_code == 1


def test_failed_ends_the_wait_with_its_message(monkeypatch, capsys) -> None:
    _serve(monkeypatch, {"w": "Failed"})
    with pytest.raises(typer.Exit):
        resource_cmds.wait_for(["w"], "Running", timeout=5)
    assert "workload/w failed: m" in capsys.readouterr().err
