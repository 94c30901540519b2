"""GPU memory is expressible (issue 17): A100-80GB (SkyPilot), the clouds' own names, gpus.memory."""

from __future__ import annotations

import pytest

from controlplane.model import ManifestError, parse_manifests
from controlplane.placement import FleetSnapshot, place_one
from controlplane.policy import PolicySet
from providers.catalog import default_catalog


def _w(gpus: str):
    return parse_manifests(f"metadata: {{name: w}}\nspec: {{gpus: {gpus}}}\n")[0]


@pytest.mark.parametrize("gpus, models, memory", [
    ("{model: A100-80GB, count: 8}", ["A100"], 80.0),
    ("{model: nvidia-a100-80gb, count: 1}", ["A100"], 80.0),
    ("{model: nvidia-tesla-a100, count: 1}", ["A100"], 40.0),
    ("{model: nvidia-h100-mega-80gb, count: 8}", ["H100"], 80.0),
    ("{model: [H200-141GB, B200-180GB], count: 8}", ["H200", "B200"], 141.0),
    ("{model: A100, count: 8, memory: 80GB}", ["A100"], 80.0),
    ("{model: H100, count: 8}", ["H100"], None),
])
def test_names_users_know_resolve_to_model_and_memory(gpus, models, memory):
    g = _w(gpus).spec.gpus
    assert (g.model, g.memory) == (models, memory)


@pytest.mark.parametrize("gpus, needle", [
    ("{model: A100-8OGB, count: 8}", "spec.gpus.model: unknown GPU model 'A100-8OGB'"),
    ("{model: [A100-80GB, L4], count: 1}", "some names carry a memory size and some do not"),
    ("{model: A100, count: 8, memory: lots}", "spec.gpus.memory: not a memory size: 'lots'"),
])
def test_bad_names_and_sizes_are_refused_naming_the_field(gpus, needle):
    with pytest.raises(ManifestError, match="") as e:
        _w(gpus)
    assert needle in str(e.value)


def test_memory_rules_out_smaller_gpus():
    snap = FleetSnapshot.from_catalog(default_catalog())
    d = place_one(_w("{model: A100-80GB, count: 8, perNode: 8}"), snap, PolicySet.default())
    assert d.placed
    assert default_catalog().instance_type(d.assignments[0].provider, d.assignments[0].instance_type).gpu_memory_gib >= 80
    assert any(v.startswith("gpu: p4d.24xlarge has 40 GiB per A100, workload wants at least 80 GiB")
               for v in d.rejections.values()), d.rejections
