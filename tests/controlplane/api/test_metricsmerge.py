"""/metrics of a service whose loop runs in another process: one exposition, each family once, the loop's
counters summed across the processes, the other process's process_* families under their own names."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.api.metricsmerge import merge
from controlplane.reconcile.metrics import LoopMetrics


def _families(text: bytes) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for f in text_string_to_metric_families(text.decode()):
        assert f.name not in out, f"{f.name} twice"
        out[f.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
    return out


def test_the_loops_metrics_from_the_other_process_are_summed_into_one_exposition() -> None:
    api, loop = LoopMetrics(), LoopMetrics()
    api.placements.labels("placed").inc(2)
    loop.placements.labels("placed").inc(3)
    loop.placements.labels("unplaceable").inc()
    loop.ticks.inc(7)
    loop.provisioning_latency.observe(3.0)
    merged = _families(merge(generate_latest(api.registry), [generate_latest(loop.registry)]))
    assert merged["awan_placements"][("awan_placements_total", (("result", "placed"),))] == 5.0
    assert merged["awan_placements"][("awan_placements_total", (("result", "unplaceable"),))] == 1.0
    assert merged["awan_reconcile_ticks"][("awan_reconcile_ticks_total", ())] == 7.0
    assert merged["awan_provisioning_latency_seconds"][("awan_provisioning_latency_seconds_count", ())] == 1.0
    # Per process: the API's own under their usual names, the loop's renamed.
    assert merged["process_cpu_seconds"].keys() == {("process_cpu_seconds_total", ())}
    assert ("awan_controller_process_cpu_seconds_total", ()) in merged["awan_controller_process_cpu_seconds"]
    assert "awan_controller_python_info" not in merged


def test_without_other_processes_the_exposition_is_the_apis() -> None:
    api = LoopMetrics()
    api.ticks.inc(4)
    assert _families(merge(generate_latest(api.registry), [])).keys() == _families(generate_latest(api.registry)).keys()
