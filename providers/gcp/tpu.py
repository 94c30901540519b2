"""Cloud TPU side of the adapter: TPU slices as nodes, and queued resources (wait-for-capacity requests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from providers.catalog import CapacityType, Catalog
from providers.errors import InvalidRequestError, NotFoundError, ProviderError
from providers.gcp.clients import GoogleApis
from providers.gcp.errors import rpc_status_error
from providers.gcp.naming import (
    OWNER,
    labels_for,
    last_segment,
    region_of,
    resource_name,
    tpu_accelerator,
    tpu_instance_type,
)
from providers.model import LABEL_OWNER, LABEL_POOL, LABEL_WORKLOAD, Node, NodeRequest, NodeState

# Software image per TPU generation (the "runtime version" every node create must name).
RUNTIME_VERSIONS = {"v5p": "v2-alpha-tpuv5", "v6e": "v2-alpha-tpuv6e", "v5litepod": "v2-alpha-tpuv5-lite"}
_STATES = {"CREATING": NodeState.PENDING, "READY": NodeState.RUNNING, "RESTARTING": NodeState.PENDING,
           "REIMAGING": NodeState.PENDING, "REPAIRING": NodeState.PENDING, "STARTING": NodeState.PENDING,
           "DELETING": NodeState.STOPPING, "STOPPING": NodeState.STOPPING, "STOPPED": NodeState.TERMINATED,
           "TERMINATED": NodeState.TERMINATED, "PREEMPTED": NodeState.PREEMPTED}


class TpuNodes:
    def __init__(self, api: GoogleApis, catalog: Catalog) -> None:
        self.api, self.catalog = api, catalog

    def _parent(self, zone: str) -> str:
        return f"projects/{self.api.project}/locations/{zone}"

    def _node_body(self, instance_type: str, labels: dict[str, str], spot: bool) -> Any:
        from google.cloud import tpu_v2
        accel = tpu_accelerator(instance_type)
        runtime = RUNTIME_VERSIONS.get(accel.split("-", 1)[0], "tpu-vm-base")
        return tpu_v2.Node(accelerator_type=accel, runtime_version=runtime, labels=labels,
                           scheduling_config=tpu_v2.SchedulingConfig(spot=spot))

    def _raise_if_failed(self, op: Any, region: str) -> None:
        if op.HasField("error") and op.error.code:
            raise rpc_status_error(op.error.code, op.error.message, endpoint=self.api.endpoint, region=region)

    # -- nodes ---------------------------------------------------------------------------------
    def create(self, req: NodeRequest) -> list[Node]:
        """One TPU node per slice, named like VMs. TPU has no requestId: the deterministic name makes a repeat
        a no-op (ALREADY_EXISTS is success)."""
        from google.cloud import tpu_v2
        client = self.api.tpu()
        spot = req.capacity_type == CapacityType.SPOT
        labels = labels_for(req.pool, req.workload, req.tags)
        names = [resource_name(req.pool, i, req.idempotency_key) for i in range(req.count)]
        pending: list[str] = []
        for name in names:
            request = tpu_v2.CreateNodeRequest(parent=self._parent(req.zone), node_id=name,
                                               node=self._node_body(req.instance_type, labels, spot))
            try:
                op = self.api.call(client.create_node, request=request, at=req.region)
            except InvalidRequestError as e:
                if e.code != "alreadyExists":
                    raise
                continue
            pending.append(op.operation.name)
        first_error: ProviderError | None = None
        for op_name in pending:
            try:
                self._raise_if_failed(self.api.wait_lro(op_name, req.region), req.region)
            except ProviderError as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return [self.to_node(self.api.call(client.get_node, name=f"{self._parent(req.zone)}/nodes/{n}",
                                           at=req.region)) for n in names]

    def list_owned(self, zones: Iterable[str]) -> list[Node]:
        client = self.api.tpu()
        nodes: list[Node] = []
        for zone in zones:
            for n in self.api.call(client.list_nodes, parent=self._parent(zone), at=region_of(zone)):
                if n.labels.get(LABEL_OWNER) == OWNER:
                    nodes.append(self.to_node(n))
        return nodes

    def to_node(self, n: Any) -> Node:
        zone = n.name.split("/")[3]
        instance_type = tpu_instance_type(n.accelerator_type)
        spot = bool(n.scheduling_config.spot or n.scheduling_config.preemptible)
        try:
            gpus = self.catalog.instance_type("gcp", instance_type).gpus
        except KeyError:
            gpus = 0
        labels = dict(n.labels)
        return Node(provider="gcp", id=str(n.id), name=last_segment(n.name), region=region_of(zone), zone=zone,
                    instance_type=instance_type, capacity_type=CapacityType.SPOT if spot else CapacityType.ON_DEMAND,
                    state=_STATES.get(n.state.name, NodeState.PENDING), pool=labels.get(LABEL_POOL, ""),
                    workload=labels.get(LABEL_WORKLOAD, ""), gpus=gpus, labels=labels)

    def delete(self, nodes: Sequence[Node]) -> None:
        client = self.api.tpu()
        pending: list[tuple[str, str]] = []
        for n in nodes:
            try:
                op = self.api.call(client.delete_node, name=f"{self._parent(n.zone)}/nodes/{n.name}", at=n.region)
            except NotFoundError:
                continue
            pending.append((op.operation.name, n.region))
        for op_name, region in pending:
            with contextlib.suppress(NotFoundError):
                self._raise_if_failed(self.api.wait_lro(op_name, region), region)

    def accelerator_types(self, zone: str) -> list[str]:
        return [t.type_ for t in self.api.call(self.api.tpu().list_accelerator_types, parent=self._parent(zone),
                                               at=region_of(zone))]

    # -- queued resources ------------------------------------------------------------------
    def create_queued_resource(self, zone: str, name: str, instance_type: str, slices: int = 1, *,
                               spot: bool = False, pool: str = "", workload: str = "",
                               tags: dict[str, str] | None = None, valid_for_s: int | None = None) -> str:
        """Ask for ``slices`` TPU slices that GCP provisions together when capacity frees up; returns the state
        (ACCEPTED, WAITING_FOR_RESOURCES, ACTIVE, FAILED, ...). Asking again for the same name is a no-op."""
        from google.cloud import tpu_v2
        qr = tpu_v2.QueuedResource
        labels = labels_for(pool or name, workload, tags or {})
        body = self._node_body(instance_type, labels, spot=False)   # spot is a property of the request here
        spec = qr.Tpu.NodeSpec(parent=self._parent(zone), node=body)
        if slices > 1:
            spec.multislice_params = qr.Tpu.NodeSpec.MultisliceParams(node_count=slices, node_id_prefix=name)
        else:
            spec.node_id = resource_name(name, 0)
        resource = qr(tpu=qr.Tpu(node_spec=[spec]))
        if spot:
            resource.spot = qr.Spot()
        else:
            resource.guaranteed = qr.Guaranteed()
        if valid_for_s:
            resource.queueing_policy = qr.QueueingPolicy(valid_until_duration={"seconds": valid_for_s})
        request = tpu_v2.CreateQueuedResourceRequest(parent=self._parent(zone), queued_resource_id=name,
                                                     queued_resource=resource)
        region = region_of(zone)
        try:
            op = self.api.call(self.api.tpu().create_queued_resource, request=request, at=region)
            self._raise_if_failed(self.api.wait_lro(op.operation.name, region), region)
        except InvalidRequestError as e:
            if e.code != "alreadyExists":
                raise
        return self.queued_resource_state(zone, name)

    def queued_resource_state(self, zone: str, name: str) -> str:
        got = self.api.call(self.api.tpu().get_queued_resource, name=f"{self._parent(zone)}/queuedResources/{name}",
                            at=region_of(zone))
        return str(got.state.state.name)

    def delete_queued_resource(self, zone: str, name: str) -> None:
        """Delete a queued resource and the slices it made (force); deleting what is gone is not an error."""
        from google.cloud import tpu_v2
        region = region_of(zone)
        request = tpu_v2.DeleteQueuedResourceRequest(name=f"{self._parent(zone)}/queuedResources/{name}", force=True)
        try:
            op = self.api.call(self.api.tpu().delete_queued_resource, request=request, at=region)
            self._raise_if_failed(self.api.wait_lro(op.operation.name, region), region)
        except NotFoundError:
            pass
