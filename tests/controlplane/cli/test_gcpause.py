"""`awan plan` pauses automatic garbage collection while it runs (infra/gcpause.py); the process's
own setting comes back afterwards, even when the command fails (CLI tests run it in-process)."""

from __future__ import annotations

import gc

import pytest

from infra.gcpause import collector_paused


def test_paused_inside_and_back_after_even_on_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the command failed")
    assert gc.isenabled()


def test_a_caller_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collect_young_collects_the_youngest_generation_once_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock runtime's use (infra/engines/mockruntime.py): its run's cycles freed, nothing older rescanned."""
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: calls.append(generation) or 0)
    with collector_paused(collect_young=True):
        assert calls == []
    assert calls == [0] and gc.isenabled()
    with collector_paused():
        pass
    assert calls == [0]


@pytest.mark.parametrize("spec", ["{gpus: {model: H100, count: 8}}", "{gpus: {model: H100, count: -1}}"])
def test_plan_leaves_the_collector_on(tmp_path, spec) -> None:
    """Planned, or refused (a bad manifest: exit 1)."""
    from typer.testing import CliRunner

    from controlplane.cli.main import app

    f = tmp_path / "w.yaml"
    f.write_text(f"metadata: {{name: one}}\nspec: {spec}\n")
    policies = tmp_path / "policies"
    policies.mkdir()
    r = CliRunner().invoke(app, ["plan", "-f", str(f), "--capacity", "catalog", "-o", "json",
                                 "--policies", str(policies)])
    assert r.exit_code == (0 if "-1" not in spec else 1), r.output
    assert gc.isenabled()
