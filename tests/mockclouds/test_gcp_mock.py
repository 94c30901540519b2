"""The GCP fake through the real google-cloud-compute and google-cloud-tpu clients over HTTP (no patching)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, tpu_v2

from mockclouds.launcher import GCP_PROJECT

P = GCP_PROJECT
ZONE = "us-central1-a"
DONE = compute_v1.Operation.Status.DONE


@pytest.fixture
def gcp(mock_gcp):
    url = mock_gcp.urls["gcp"]
    kw = {"credentials": AnonymousCredentials(), "client_options": {"api_endpoint": url}}

    class Clients:
        base = url
        backend = mock_gcp.backend("gcp")
        instances = compute_v1.InstancesClient(**kw)
        ops = compute_v1.ZoneOperationsClient(**kw)
        regions = compute_v1.RegionsClient(**kw)
        machine_types = compute_v1.MachineTypesClient(**kw)
        accelerators = compute_v1.AcceleratorTypesClient(**kw)
        tpu = tpu_v2.TpuClient(transport="rest", **kw)
    return Clients


def _vm(name: str, machine: str = "a3-highgpu-8g", labels: dict | None = None, spot: bool = False,
        action: str = "STOP") -> compute_v1.Instance:
    sched = compute_v1.Scheduling(provisioning_model="SPOT" if spot else "STANDARD",
                                  **({"instance_termination_action": action} if spot else {}))
    return compute_v1.Instance(name=name, machine_type=f"zones/{ZONE}/machineTypes/{machine}",
                               labels=labels or {}, scheduling=sched)


def _insert(gcp, inst, request_id: str | None = None, zone: str = ZONE) -> compute_v1.Operation:
    req = compute_v1.InsertInstanceRequest(project=P, zone=zone, instance_resource=inst, request_id=request_id)
    op = gcp.instances.insert(request=req, retry=None)
    return gcp.ops.wait(project=P, zone=zone, operation=op.name, retry=None)


def _gpu_quota(gcp, metric: str, region: str = "us-central1") -> tuple[float, float]:
    q = {x.metric: x for x in gcp.regions.get(project=P, region=region).quotas}[metric]
    return q.limit, q.usage


def test_catalog_views_per_zone(gcp):
    mts = {m.name: m for m in gcp.machine_types.list(project=P, zone=ZONE)}
    assert mts["a3-highgpu-8g"].accelerators[0].guest_accelerator_type == "nvidia-h100-80gb"
    assert mts["a3-highgpu-8g"].accelerators[0].guest_accelerator_count == 8
    assert not any(n.startswith("tpu-") for n in mts)        # TPUs are not machine types
    accels = {a.name: a.maximum_cards_per_instance for a in gcp.accelerators.list(project=P, zone=ZONE)}
    assert accels["nvidia-h100-80gb"] == 8
    tpus = {t.type_ for t in gcp.tpu.list_accelerator_types(parent=f"projects/{P}/locations/{ZONE}")}
    assert {"v5p-8", "v6e-8"} <= tpus


def test_insert_is_idempotent_by_request_id_and_tracks_quota(gcp):
    rid = str(uuid.uuid4())
    first = _insert(gcp, _vm("vm-0", labels={"awan-owner": "awan"}), rid)
    again = _insert(gcp, _vm("vm-0", labels={"awan-owner": "awan"}), rid)
    assert first.status == DONE and not first.error.errors
    assert again.name == first.name
    assert len(list(gcp.instances.list(project=P, zone=ZONE))) == 1
    assert _gpu_quota(gcp, "NVIDIA_H100_GPUS")[1] == 8.0
    with pytest.raises(gexc.Conflict):          # same name without the request id: alreadyExists
        _insert(gcp, _vm("vm-0"))
    op = gcp.instances.delete(project=P, zone=ZONE, instance="vm-0", retry=None)
    gcp.ops.wait(project=P, zone=ZONE, operation=op.name)
    assert _gpu_quota(gcp, "NVIDIA_H100_GPUS")[1] == 0.0
    with pytest.raises(gexc.NotFound):
        gcp.instances.get(project=P, zone=ZONE, instance="vm-0", retry=None)


def test_stockout_ends_the_operation_with_zone_resource_pool_exhausted(gcp):
    free = gcp.backend.ledger.free(ZONE, "a3-highgpu-8g")
    httpx.post(gcp.base + "/_mock/capacity", json={"free": 0, "zone": ZONE, "instanceType": "a3-highgpu-8g"})
    op = _insert(gcp, _vm("vm-1"))
    assert op.http_error_status_code == 503
    assert op.error.errors[0].code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert free > 0 and list(gcp.instances.list(project=P, zone=ZONE)) == []


def test_quota_breach_ends_the_operation_with_quota_exceeded(gcp):
    r = httpx.post(gcp.base + "/_mock/quotas", json={"region": "us-central1", "metric": "PREEMPTIBLE_NVIDIA_H100_GPUS",
                                                     "limit": 8})
    assert r.status_code == 200
    assert _insert(gcp, _vm("s-0", spot=True)).status == DONE
    op = _insert(gcp, _vm("s-1", spot=True))
    assert op.http_error_status_code == 403 and op.error.errors[0].code == "QUOTA_EXCEEDED"
    assert "PREEMPTIBLE_NVIDIA_H100_GPUS" in op.error.errors[0].message
    assert _insert(gcp, _vm("od-0")).status == DONE and not _insert(gcp, _vm("od-1")).error.errors  # on-demand quota apart


def test_label_filter_on_list_and_aggregated_list(gcp):
    _insert(gcp, _vm("a-0", labels={"awan-owner": "awan", "awan-pool": "a"}))
    _insert(gcp, _vm("b-0", labels={"awan-owner": "awan", "awan-pool": "b"}))
    _insert(gcp, _vm("x-0", labels={"team": "other"}))
    owned = gcp.instances.list(request=compute_v1.ListInstancesRequest(
        project=P, zone=ZONE, filter='labels.awan-owner = "awan"'))
    assert sorted(i.name for i in owned) == ["a-0", "b-0"]
    both = gcp.instances.list(request=compute_v1.ListInstancesRequest(
        project=P, zone=ZONE, filter='(labels.awan-owner = "awan") (labels.awan-pool = "b")'))
    assert [i.name for i in both] == ["b-0"]
    present = gcp.instances.aggregated_list(request=compute_v1.AggregatedListInstancesRequest(
        project=P, filter="labels.team:*"))
    assert [i.name for _, scoped in present for i in scoped.instances] == ["x-0"]
    with pytest.raises(gexc.BadRequest):
        list(gcp.instances.list(request=compute_v1.ListInstancesRequest(project=P, zone=ZONE, filter="nonsense")))


def test_eq_filter_is_a_whole_field_regular_expression(gcp):
    """GCE's ``eq``/``ne`` form reads its literal as RE2 matching the whole field (the adapter's create reads
    its VMs back with ``name eq '<prefix>-[0-9]+'``)."""
    for name, pool in (("p-1a2b-0", "p"), ("p-1a2b-1", "p"), ("p-1a2b-x", "p"), ("p-1a2b-10", "q"), ("zp-1a2b-2", "p")):
        _insert(gcp, _vm(name, machine="g2-standard-4", labels={"awan-pool": pool}))
    got = gcp.instances.list(request=compute_v1.ListInstancesRequest(
        project=P, zone=ZONE, filter="(labels.awan-pool eq 'p') (name eq 'p-1a2b-[0-9]+')"))
    assert sorted(i.name for i in got) == ["p-1a2b-0", "p-1a2b-1"]
    other = gcp.instances.list(request=compute_v1.ListInstancesRequest(
        project=P, zone=ZONE, filter="name ne 'p-1a2b-.*'"))
    assert [i.name for i in other] == ["zp-1a2b-2"]
    with pytest.raises(gexc.BadRequest):
        list(gcp.instances.list(request=compute_v1.ListInstancesRequest(project=P, zone=ZONE, filter="name eq '('")))


def test_calls_endpoint_counts_api_calls_by_operation(gcp):
    httpx.post(gcp.base + "/_mock/reset")
    _insert(gcp, _vm("c-0", machine="g2-standard-4"))
    list(gcp.instances.list(project=P, zone=ZONE))
    assert httpx.get(gcp.base + "/_mock/calls").json()["calls"] == {
        "instances.insert": 1, "instances.list": 1, "zoneOperations.wait": 1}


def test_throttle_outage_and_google_error_body(gcp):
    httpx.post(gcp.base + "/_mock/faults", json={"kind": "throttle", "operation": "instances.list", "times": 1,
                                                 "retry_after": 2})
    r = httpx.get(f"{gcp.base}/compute/v1/projects/{P}/zones/{ZONE}/instances")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    body = r.json()["error"]
    assert body["status"] == "RESOURCE_EXHAUSTED" and body["errors"][0]["reason"] == "rateLimitExceeded"
    assert httpx.get(f"{gcp.base}/compute/v1/projects/{P}/zones/{ZONE}/instances").status_code == 200
    httpx.post(gcp.base + "/_mock/faults", json={"kind": "outage", "region": "us-central1"})
    with pytest.raises(gexc.ServiceUnavailable):
        gcp.regions.get(project=P, region="us-central1", retry=None)
    assert gcp.regions.get(project=P, region="europe-west4", retry=None).status == "UP"


def test_spot_preemption_terminates_or_deletes_and_the_capacity_goes_elsewhere(gcp):
    before = gcp.backend.ledger.free(ZONE, "a3-highgpu-8g")
    _insert(gcp, _vm("keep-0", spot=True, action="STOP"))
    _insert(gcp, _vm("gone-0", spot=True, action="DELETE"))
    _insert(gcp, _vm("od-0"))
    ids = httpx.post(gcp.base + "/_mock/preempt", json={"zone": ZONE}).json()["nodes"]
    assert len(ids) == 2
    names = {i.name: i for i in gcp.instances.list(project=P, zone=ZONE)}
    assert set(names) == {"keep-0", "od-0"}
    assert names["keep-0"].status == "TERMINATED" and names["od-0"].status == "RUNNING"
    # Three VMs took three nodes; the two reclaimed went to other customers: the zone is not refilled.
    assert gcp.backend.ledger.free(ZONE, "a3-highgpu-8g") == before - 3
    inv = httpx.get(gcp.base + "/_mock/inventory").json()["resources"]
    assert {(r["name"], r["state"]) for r in inv} == {("keep-0", "TERMINATED"), ("od-0", "RUNNING")}


def test_tpu_node_lifecycle_takes_and_returns_slice_capacity(gcp):
    parent = f"projects/{P}/locations/{ZONE}"
    free = gcp.backend.ledger.free(ZONE, "tpu-v5p-8")
    op = gcp.tpu.create_node(parent=parent, node_id="slice-0", node=tpu_v2.Node(
        accelerator_type="v5p-8", runtime_version="v2-alpha-tpuv5", labels={"awan-owner": "awan"},
        scheduling_config=tpu_v2.SchedulingConfig(spot=True)))
    node = op.result(timeout=30)
    assert node.state == tpu_v2.Node.State.READY and node.accelerator_type == "v5p-8"
    assert gcp.backend.ledger.free(ZONE, "tpu-v5p-8") == free - 1
    assert [n.name.rsplit("/", 1)[-1] for n in gcp.tpu.list_nodes(parent=parent)] == ["slice-0"]
    gcp.tpu.delete_node(name=f"{parent}/nodes/slice-0").result(timeout=30)
    assert list(gcp.tpu.list_nodes(parent=parent)) == []
    assert gcp.backend.ledger.free(ZONE, "tpu-v5p-8") == free


def test_tpu_stockout_fails_the_operation(gcp):
    gcp.backend.ledger.set_free(0, zone=ZONE, instance_type="tpu-v6e-8")
    op = gcp.tpu.create_node(parent=f"projects/{P}/locations/{ZONE}", node_id="s",
                             node=tpu_v2.Node(accelerator_type="v6e-8", runtime_version="v2-alpha-tpuv6e"))
    with pytest.raises(gexc.GoogleAPICallError, match="no more capacity"):
        op.result(timeout=30)


def test_queued_resource_waits_for_capacity_then_becomes_active(gcp):
    parent = f"projects/{P}/locations/{ZONE}"
    gcp.backend.ledger.set_free(1, zone=ZONE, instance_type="tpu-v5p-16")
    spec = tpu_v2.QueuedResource.Tpu.NodeSpec(
        parent=parent, node=tpu_v2.Node(accelerator_type="v5p-16", runtime_version="v2-alpha-tpuv5"),
        multislice_params=tpu_v2.QueuedResource.Tpu.NodeSpec.MultisliceParams(node_count=2, node_id_prefix="qr"))
    qr = tpu_v2.QueuedResource(tpu=tpu_v2.QueuedResource.Tpu(node_spec=[spec]), spot=tpu_v2.QueuedResource.Spot())
    created = gcp.tpu.create_queued_resource(parent=parent, queued_resource_id="qr-1", queued_resource=qr)
    assert created.result(timeout=30).state.state == tpu_v2.QueuedResourceState.State.ACCEPTED
    S = tpu_v2.QueuedResourceState.State
    assert gcp.tpu.get_queued_resource(name=f"{parent}/queuedResources/qr-1").state.state == S.WAITING_FOR_RESOURCES
    assert list(gcp.tpu.list_nodes(parent=parent)) == []
    gcp.backend.ledger.set_free(2, zone=ZONE, instance_type="tpu-v5p-16")
    assert gcp.tpu.get_queued_resource(name=f"{parent}/queuedResources/qr-1").state.state == S.ACTIVE
    assert sorted(n.name.rsplit("/", 1)[-1] for n in gcp.tpu.list_nodes(parent=parent)) == ["qr-0", "qr-1"]
    gcp.tpu.delete_queued_resource(request=tpu_v2.DeleteQueuedResourceRequest(
        name=f"{parent}/queuedResources/qr-1", force=True)).result(timeout=30)
    assert list(gcp.tpu.list_nodes(parent=parent)) == []
    assert gcp.backend.ledger.free(ZONE, "tpu-v5p-16") == 2
