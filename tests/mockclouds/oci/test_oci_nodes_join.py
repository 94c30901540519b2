"""The OCI mock's Kubernetes clusters: instances launched through the OCI API register as Nodes of their
region's cluster (as the AWS, GCP and Azure mocks' machines do), pods run on them, and a preempted or
terminated instance's Node leaves (its pods fail NodeLost). Cloud side over OCI's JSON API (signed keyId);
cluster side through the official kubernetes client."""

from __future__ import annotations

import httpx
import pytest

from mockclouds.oci.keys import TENANCY, key_id
from providers import nodelabels as L
from tests.mockclouds.test_kubernetes_regional import Cluster, cluster_of, control, gang_job
from tests.mockclouds.test_kubernetes_workloads import wait

H100 = "BM.GPU.H100.8"
REGION = "us-ashburn-1"


@pytest.fixture
def oci_api(mock_oci):
    auth = f'Signature version="1",keyId="{key_id()}",algorithm="rsa-sha256",headers="date",signature="x"'
    with httpx.Client(base_url=f"{mock_oci.urls['oci']}/{REGION}", headers={"Authorization": auth}) as c:
        yield c


def _launch(api: httpx.Client, pool: str) -> str:
    body = {"compartmentId": TENANCY, "availabilityDomain": "Awan:US-ASHBURN-AD-1", "shape": H100, "displayName": pool,
            "freeformTags": {"awan-owner": "awan", "awan-pool": pool, "awan-workload": "w1"}}
    r = api.post("/20160918/instances", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _names(c: Cluster, selector: str = "") -> list[str]:
    return [n.metadata.name for n in c.nodes(selector)]


def test_oci_instances_join_their_regions_cluster_and_run_pods(mock_oci, oci_api) -> None:
    url = mock_oci.urls["oci"]
    c = cluster_of(url, "oci", REGION)
    assert c.nodes() == []
    ids = [_launch(oci_api, "pool-a"), _launch(oci_api, "pool-a")]
    wait(lambda: len(c.nodes()) == 2, "two nodes", 120)
    nodes = c.nodes(f"{L.POOL}=pool-a")
    by_id = {n.spec.provider_id.removeprefix("oci://"): n.metadata.name for n in nodes}
    assert sorted(by_id) == sorted(ids) and all(len(name) <= 63 for name in by_id.values())
    for n in nodes:
        lab = n.metadata.labels
        assert (lab[L.PROVIDER], lab[L.REGION], lab[L.ZONE], lab[L.WORKLOAD], lab[L.CAPACITY_TYPE]) == \
            ("oci", REGION, "US-ASHBURN-AD-1", "w1", "on-demand")
        assert lab["oke.oraclecloud.com/node-pool"] == "pool-a" and lab[L.INSTANCE_TYPE] == H100
        assert n.status.allocatable[L.GPU_RESOURCE] == "8"

    # A two-pod gang pinned to the pool runs on the two instances.
    c.batch.create_namespaced_job("default", gang_job("g", "pool-a", 2, 8))
    wait(lambda: [p.status.phase for p in c.core.list_namespaced_pod("default").items] == ["Running"] * 2,
         "the gang Running", 120)
    assert {p.spec.node_name for p in c.core.list_namespaced_pod("default").items} == set(by_id.values())

    # Terminating an instance through the API: its Node leaves and its pod fails NodeLost.
    assert oci_api.delete(f"/20160918/instances/{ids[1]}").status_code == 204
    wait(lambda: _names(c) == [by_id[ids[0]]], "the terminated instance's node gone", 120)
    lost = [p for p in c.core.list_namespaced_pod("default").items if p.spec.node_name == by_id[ids[1]]]
    wait(lambda: c.core.read_namespaced_pod(lost[0].metadata.name, "default").status.reason == "NodeLost",
         "its pod NodeLost", 120)

    # A revocation takes the other: the cluster is left without nodes.
    assert control(url, "/_mock/revoke", {"region": REGION})["nodes"] == [ids[0]]
    wait(lambda: c.nodes() == [], "no nodes left", 120)
