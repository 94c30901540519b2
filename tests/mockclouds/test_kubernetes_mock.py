"""The fake CKS apiserver through the official kubernetes client (and raw HTTP where the wire matters)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client, watch

from mockclouds.faults import Fault
from mockclouds.launcher import MOCK_SECRETS

G, V, P = "compute.coreweave.com", "v1alpha1", "nodepools"
TOKEN = MOCK_SECRETS["coreweave"]["token"]


@pytest.fixture
def kube(mock_coreweave):
    cfg = client.Configuration()
    cfg.host = mock_coreweave.urls["coreweave"]
    cfg.api_key = {"authorization": TOKEN}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = client.ApiClient(cfg)
    yield client.CoreV1Api(api), client.CustomObjectsApi(api)
    api.close()


@pytest.fixture
def backend(mock_coreweave):
    return mock_coreweave.backend("coreweave")


def raw(mc, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        token: str | None = TOKEN) -> tuple[int, dict[str, str], dict]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(mc.urls["coreweave"] + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def pool(name: str, itype: str = "gd-8xh100ib-i128", target: int = 1, zone: str = "US-EAST-04A",
         **spec) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "NodePool",
            "metadata": {"name": name, "labels": {"compute.coreweave.com/zone": zone}},
            "spec": {"instanceType": itype, "targetNodes": target, **spec}}


# -- discovery, auth ---------------------------------------------------------------------------------
def test_discovery_documents(mock_coreweave):
    assert raw(mock_coreweave, "GET", "/api")[2]["versions"] == ["v1"]
    groups = raw(mock_coreweave, "GET", "/apis")[2]["groups"]
    assert [g["preferredVersion"]["groupVersion"] for g in groups] == ["apps/v1", "batch/v1", f"{G}/{V}"]
    res = raw(mock_coreweave, "GET", f"/apis/{G}/{V}")[2]["resources"]
    np = next(r for r in res if r["name"] == "nodepools")
    assert (np["kind"], np["namespaced"]) == ("NodePool", False)
    assert any(r["name"] == "nodepools/status" for r in res)
    core = {r["name"] for r in raw(mock_coreweave, "GET", "/api/v1")[2]["resources"]}
    assert {"nodes", "namespaces", "pods", "configmaps"} <= core
    # aggregated discovery only -> 406, so a client falls back to the documents above
    code, _, st = raw(mock_coreweave, "GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert (code, st["reason"]) == (406, "NotAcceptable")
    assert raw(mock_coreweave, "GET", "/openapi/v2")[0] == 404


def test_version_and_auth(mock_coreweave, kube):
    assert raw(mock_coreweave, "GET", "/version/")[2]["minor"] == "32"
    for token in (None, "nope"):
        code, _, st = raw(mock_coreweave, "GET", "/api/v1/nodes", token=token)
        assert (code, st["kind"], st["reason"]) == (401, "Status", "Unauthorized")


# -- CRUD semantics ----------------------------------------------------------------------------------
def test_create_get_patch_metadata_semantics(kube):
    _, co = kube
    a = co.create_cluster_custom_object(G, V, P, pool("a"))
    m = a["metadata"]
    assert m["uid"] and m["creationTimestamp"] and m["generation"] == 1
    assert int(m["resourceVersion"]) > 0
    b = co.patch_cluster_custom_object(G, V, P, "a", {"metadata": {"labels": {"x": "1"}}})
    assert b["metadata"]["generation"] == 1 and int(b["metadata"]["resourceVersion"]) > int(m["resourceVersion"])
    c = co.patch_cluster_custom_object(G, V, P, "a", {"spec": {"targetNodes": 2}})
    assert c["metadata"]["generation"] == 2 and c["metadata"]["uid"] == m["uid"]
    assert c["status"]["currentNodes"] == 2 and c["status"]["observedGeneration"] == 2


def test_errors_are_status_objects(kube):
    _, co = kube
    co.create_cluster_custom_object(G, V, P, pool("dup"))
    with pytest.raises(client.ApiException) as ei:
        co.create_cluster_custom_object(G, V, P, pool("dup"))
    st = json.loads(ei.value.body)
    assert (ei.value.status, st["kind"], st["reason"]) == (409, "Status", "AlreadyExists")
    with pytest.raises(client.ApiException) as ei:
        co.get_cluster_custom_object(G, V, P, "ghost")
    assert (ei.value.status, json.loads(ei.value.body)["reason"]) == (404, "NotFound")
    bad = pool("bad")
    del bad["spec"]["targetNodes"]
    with pytest.raises(client.ApiException) as ei:
        co.create_cluster_custom_object(G, V, P, bad)
    st = json.loads(ei.value.body)
    assert ei.value.status == 422 and st["reason"] == "Invalid"
    assert [c["field"] for c in st["details"]["causes"]] == ["spec.targetNodes"]
    with pytest.raises(client.ApiException) as ei:
        co.create_cluster_custom_object(G, V, P, pool("Bad_Name"))
    assert ei.value.status == 422
    with pytest.raises(client.ApiException) as ei:
        co.patch_cluster_custom_object(G, V, P, "dup", {"spec": {"instanceType": "gb200-4x"}})
    assert ei.value.status == 422 and "immutable" in json.loads(ei.value.body)["message"]


def test_update_with_stale_resource_version_conflicts(kube):
    _, co = kube
    obj = co.create_cluster_custom_object(G, V, P, pool("rv"))
    co.patch_cluster_custom_object(G, V, P, "rv", {"spec": {"targetNodes": 2}})
    obj["spec"]["targetNodes"] = 3
    with pytest.raises(client.ApiException) as ei:
        co.replace_cluster_custom_object(G, V, P, "rv", obj)
    assert (ei.value.status, json.loads(ei.value.body)["reason"]) == (409, "Conflict")
    fresh = co.get_cluster_custom_object(G, V, P, "rv")
    fresh["spec"]["targetNodes"] = 3
    assert co.replace_cluster_custom_object(G, V, P, "rv", fresh)["status"]["currentNodes"] == 3


def test_status_subresource_is_separate(kube):
    _, co = kube
    co.create_cluster_custom_object(G, V, P, pool("st", target=1))
    out = co.patch_cluster_custom_object(G, V, P, "st", {"status": {"currentNodes": 99}})
    assert out["status"]["currentNodes"] == 1
    out = co.patch_cluster_custom_object_status(G, V, P, "st", {"status": {"currentNodes": 7}})
    assert out["status"]["currentNodes"] == 7 and out["spec"]["targetNodes"] == 1


def test_json_patch_and_server_side_apply(mock_coreweave, kube):
    _, co = kube
    co.create_cluster_custom_object(G, V, P, pool("jp"))
    ops = json.dumps([{"op": "replace", "path": "/spec/targetNodes", "value": 2}]).encode()
    code, _, obj = raw(mock_coreweave, "PATCH", f"/apis/{G}/{V}/{P}/jp", ops,
                       {"Content-Type": "application/json-patch+json"})
    assert code == 200 and obj["status"]["currentNodes"] == 2
    manifest = b"apiVersion: compute.coreweave.com/v1alpha1\nkind: NodePool\nmetadata: {name: ssa, labels: " \
               b"{compute.coreweave.com/zone: US-EAST-04A}}\nspec: {instanceType: gd-8xh100ib-i128, targetNodes: 1}\n"
    path = f"/apis/{G}/{V}/{P}/ssa?fieldManager=test"
    code, _, obj = raw(mock_coreweave, "PATCH", path, manifest, {"Content-Type": "application/apply-patch+yaml"})
    assert code == 201 and obj["status"]["currentNodes"] == 1
    code, _, obj = raw(mock_coreweave, "PATCH", path, manifest.replace(b"targetNodes: 1", b"targetNodes: 3"),
                       {"Content-Type": "application/apply-patch+yaml"})
    assert code == 200 and obj["status"]["currentNodes"] == 3


# -- selectors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=a", {"n-a"}), ("tier==a", {"n-a"}), ("tier!=a", {"n-b", "n-none"}),
    ("tier in (a,b)", {"n-a", "n-b"}), ("tier notin (a)", {"n-b", "n-none"}),
    ("tier", {"n-a", "n-b"}), ("!tier", {"n-none"}), ("tier,team=x", {"n-a"}),
])
def test_label_selectors(kube, selector, expected):
    core, _ = kube
    for name, labels in (("n-a", {"tier": "a", "team": "x"}), ("n-b", {"tier": "b"}), ("n-none", {})):
        core.create_node({"metadata": {"name": name, "labels": labels}})
    assert {n.metadata.name for n in core.list_node(label_selector=selector).items} == expected


def test_field_selector_and_bad_selectors(kube):
    core, _ = kube
    for name in ("f1", "f2"):
        core.create_node({"metadata": {"name": name}})
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=f2").items] == ["f2"]
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name!=f2").items] == ["f1"]
    for kw in ({"label_selector": "a in b"}, {"field_selector": "spec.unknown=1"}):
        with pytest.raises(client.ApiException) as ei:
            core.list_node(**kw)
        assert ei.value.status == 400


# -- watch -------------------------------------------------------------------------------------------
def test_watch_replays_changes_after_a_resource_version(kube):
    _, co = kube
    rv = co.list_cluster_custom_object(G, V, P)["metadata"]["resourceVersion"]
    co.create_cluster_custom_object(G, V, P, pool("w"))
    co.patch_cluster_custom_object(G, V, P, "w", {"spec": {"targetNodes": 2}})
    co.delete_cluster_custom_object(G, V, P, "w")
    w = watch.Watch()
    seen = [(e["type"], e["object"]["metadata"]["name"], int(e["object"]["metadata"]["resourceVersion"]))
            for e in w.stream(co.list_cluster_custom_object, G, V, P, resource_version=rv, timeout_seconds=1)]
    types = [t for t, _, _ in seen]
    assert types[0] == "ADDED" and types[-1] == "DELETED" and "MODIFIED" in types
    assert [r for _, _, r in seen] == sorted(r for _, _, r in seen)


def test_watch_sends_existing_objects_then_ends_at_timeout(kube):
    core, _ = kube
    core.create_node({"metadata": {"name": "w1", "labels": {"k": "v"}}})
    core.create_node({"metadata": {"name": "w2"}})
    events = list(watch.Watch().stream(core.list_node, label_selector="k=v", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "w1")]


def test_watch_from_a_forgotten_resource_version_is_expired(mock_coreweave, kube, backend):
    _, co = kube
    co.create_cluster_custom_object(G, V, P, pool("old"))
    rv = co.list_cluster_custom_object(G, V, P)["metadata"]["resourceVersion"]
    backend.reset()
    with pytest.raises(client.ApiException) as ei:
        list(watch.Watch().stream(co.list_cluster_custom_object, G, V, P, resource_version=str(int(rv) - 1),
                                  timeout_seconds=1))
    assert ei.value.status == 410


# -- the CKS controller ------------------------------------------------------------------------------
def test_controller_makes_nodes_and_reports_stockout(kube, backend):
    core, co = kube
    free = backend.ledger.free("US-EAST-14A", "gb200-4x")
    obj = co.create_cluster_custom_object(G, V, P, pool("gb", "gb200-4x", 20, "US-EAST-14A",
                                                       nodeLabels={"team": "r"}))
    assert obj["status"]["currentNodes"] == 20
    nodes = core.list_node(label_selector="compute.coreweave.com/node-pool=gb").items
    assert len(nodes) == 20 and backend.ledger.free("US-EAST-14A", "gb200-4x") == free - 20
    lab = nodes[0].metadata.labels
    assert lab["node.coreweave.cloud/type"] == "gb200-4x" and lab["team"] == "r"
    assert (lab["topology.kubernetes.io/zone"], lab["topology.kubernetes.io/region"]) == ("US-EAST-14A", "US-EAST-14")
    assert nodes[0].status.allocatable["nvidia.com/gpu"] == "4"
    racks = {n.metadata.labels["ds.coreweave.com/nvlink.domain"] for n in nodes}
    assert len(racks) == 2
    short = co.patch_cluster_custom_object(G, V, P, "gb", {"spec": {"targetNodes": free + 4}})
    at = next(c for c in short["status"]["conditions"] if c["type"] == "AtTarget")
    assert (short["status"]["currentNodes"], at["status"], at["reason"]) == (free, "False", "InsufficientCapacity")
    down = co.patch_cluster_custom_object(G, V, P, "gb", {"spec": {"targetNodes": 5}})
    assert down["status"]["currentNodes"] == 5 and backend.ledger.free("US-EAST-14A", "gb200-4x") == free - 5
    co.delete_cluster_custom_object(G, V, P, "gb")
    assert core.list_node().items == [] and backend.ledger.free("US-EAST-14A", "gb200-4x") == free


def test_default_zone_is_the_first_catalog_zone_offering_the_type(kube):
    core, co = kube
    body = pool("nz", "gd-8xh200ib-i128")
    del body["metadata"]["labels"]
    co.create_cluster_custom_object(G, V, P, body)
    zone = core.list_node().items[0].metadata.labels["topology.kubernetes.io/zone"]
    from providers.catalog import default_catalog
    first = next(o.zone for o in default_catalog().for_provider("coreweave") if o.instance_type == "gd-8xh200ib-i128")
    assert zone == first


def test_revoke_removes_nodes_and_the_pool_shows_it(mock_coreweave, kube, backend):
    core, co = kube
    co.create_cluster_custom_object(G, V, P, pool("rev", target=3))
    code, _, out = raw(mock_coreweave, "POST", "/_mock/revoke", json.dumps({"region": "US-EAST-04"}).encode(),
                       {"Content-Type": "application/json"})
    assert code == 200 and len(out["nodes"]) == 3
    got = co.get_cluster_custom_object(G, V, P, "rev")
    at = next(c for c in got["status"]["conditions"] if c["type"] == "AtTarget")
    assert (got["status"]["currentNodes"], at["reason"]) == (0, "NodesRevoked")
    inv = raw(mock_coreweave, "GET", "/_mock/inventory")[2]["resources"]
    assert [(r["kind"], r["id"], r["state"]) for r in inv] == [("NodePool", "rev", "pending")]
    assert core.list_node().items == []


def test_preempt_takes_only_spot_nodes(kube, backend):
    core, co = kube
    co.create_cluster_custom_object(G, V, P, pool("spot", target=2, computeClass="spot"))
    co.create_cluster_custom_object(G, V, P, pool("od", target=1))
    gone = backend.preempt(None, None, None)
    assert sorted(gone) == ["spot-0", "spot-1"]
    assert [n.metadata.name for n in core.list_node().items] == ["od-0"]


# -- faults ------------------------------------------------------------------------------------------
def test_throttle_and_outage_faults(mock_coreweave, backend):
    backend.faults.add(Fault(kind="throttle", operation="list nodes", times=1, retry_after=2))
    code, headers, st = raw(mock_coreweave, "GET", "/api/v1/nodes")
    assert (code, st["reason"], headers["Retry-After"]) == (429, "TooManyRequests", "2")
    assert raw(mock_coreweave, "GET", "/api/v1/nodes")[0] == 200
    backend.faults.add(Fault(kind="outage", region="US-EAST-04"))
    body = json.dumps(pool("o")).encode()
    code, _, st = raw(mock_coreweave, "POST", f"/apis/{G}/{V}/{P}", body, {"Content-Type": "application/json"})
    assert (code, st["reason"]) == (503, "ServiceUnavailable")
    other = json.dumps(pool("o", "gb200-4x", 1, "US-EAST-14A")).encode()
    assert raw(mock_coreweave, "POST", f"/apis/{G}/{V}/{P}", other, {"Content-Type": "application/json"})[0] == 201


# -- pods and namespaces -----------------------------------------------------------------------------
def test_pods_minimal_lifecycle(kube):
    core, _ = kube
    assert {"default", "kube-system"} <= {n.metadata.name for n in core.list_namespace().items}
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    p = core.create_namespaced_pod("default", {"metadata": {"name": "p1", "labels": {"a": "b"}}, "spec": spec})
    assert p.metadata.namespace == "default" and p.status.phase == "Pending"
    assert [x.metadata.name for x in core.list_namespaced_pod("default", label_selector="a=b").items] == ["p1"]
    assert core.list_namespaced_pod("kube-system").items == []
    assert core.read_namespaced_pod("p1", "default").metadata.uid == p.metadata.uid
    core.delete_namespaced_pod("p1", "default")
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_pod("p1", "default")
    assert ei.value.status == 404
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_pod("nowhere", {"metadata": {"name": "p2"}, "spec": spec})
    assert ei.value.status == 404
