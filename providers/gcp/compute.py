"""Compute Engine side of the adapter: GPU VMs (insert/list/delete) and compact placement policies."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from providers.catalog import CapacityType, Catalog
from providers.errors import InvalidRequestError, NotFoundError, ProviderError
from providers.gcp.clients import GoogleApis
from providers.gcp.naming import (
    OWNER_FILTER,
    instance_request_id,
    label_value,
    labels_for,
    last_segment,
    region_of,
    request_id,
    resource_name,
)
from providers.model import LABEL_POOL, LABEL_WORKLOAD, Node, NodeRequest, NodeState

_STATES = {"PROVISIONING": NodeState.PENDING, "STAGING": NodeState.PENDING, "RUNNING": NodeState.RUNNING,
           "STOPPING": NodeState.STOPPING, "SUSPENDING": NodeState.STOPPING, "SUSPENDED": NodeState.TERMINATED,
           "REPAIRING": NodeState.PENDING, "TERMINATED": NodeState.TERMINATED}


class ComputeNodes:
    def __init__(self, api: GoogleApis, catalog: Catalog) -> None:
        self.api, self.catalog = api, catalog

    def _instances(self) -> Any:
        return self.api.compute("InstancesClient")

    # -- create --------------------------------------------------------------------------------
    def _instance(self, req: NodeRequest, name: str) -> Any:
        from google.cloud import compute_v1
        # a3/a4/g2 machine types carry their GPUs: guestAccelerators is only needed for N1, never here.
        spot = req.capacity_type == CapacityType.SPOT
        # STOP rather than DELETE on preemption: the VM stays visible as TERMINATED, so observe sees a
        # preemption (and its pool) instead of a node that silently vanished.
        scheduling = compute_v1.Scheduling(
            provisioning_model="SPOT" if spot else "STANDARD", on_host_maintenance="TERMINATE",
            automatic_restart=not spot, **({"instance_termination_action": "STOP"} if spot else {}))
        body = compute_v1.Instance(
            name=name, machine_type=f"zones/{req.zone}/machineTypes/{req.instance_type}",
            labels=labels_for(req.pool, req.workload, req.tags), scheduling=scheduling,
            network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")],
            disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image="projects/cos-cloud/global/images/family/cos-stable", disk_size_gb=200))],
        )
        if req.placement_group:
            body.resource_policies = [f"projects/{self.api.project}/regions/{req.region}/resourcePolicies/"
                                      f"{req.placement_group}"]
        if req.reservation_id:
            body.reservation_affinity = compute_v1.ReservationAffinity(
                consume_reservation_type="SPECIFIC_RESERVATION", key="compute.googleapis.com/reservation-name",
                values=[req.reservation_id])
        return body

    def create(self, req: NodeRequest) -> list[Node]:
        """Insert every VM first (GCE works on them in parallel), then wait for each operation. The requestId
        of VM i is a UUID5 of (idempotency_key, zone, i): a retried or repeated request makes no second VM."""
        from google.cloud import compute_v1
        names = [resource_name(req.pool, i, req.idempotency_key) for i in range(req.count)]
        pending: list[tuple[str, str]] = []
        for i, name in enumerate(names):
            insert = compute_v1.InsertInstanceRequest(project=self.api.project, zone=req.zone,
                                                      instance_resource=self._instance(req, name),
                                                      request_id=instance_request_id(req.idempotency_key, req.zone, i))
            try:
                op = self.api.call(self._instances().insert, request=insert, at=req.region)
            except InvalidRequestError as e:
                if e.code != "alreadyExists":     # same name, requestId forgotten: the VM is ours already
                    raise
                continue
            # A repeated requestId answers with the original operation: wait where it actually runs.
            pending.append((last_segment(op.zone) or req.zone, op.name))
        first_error: ProviderError | None = None
        for zone, op_name in pending:
            try:
                self.api.wait_compute("zones", zone, op_name, req.region)
            except ProviderError as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return self._created(req, names)

    def _created(self, req: NodeRequest, names: list[str]) -> list[Node]:
        """The request's VMs, in the order of ``names``: one VM is one instances.get; more are one
        instances.list of the zone rather than one get a VM. The filter keeps the answer to this request's
        VMs: the pool's label (a pool is filled by many requests, one node each) and the names' shared prefix
        (RE2, full match, as GCE's ``eq`` form reads it); every name of a request differs only in its trailing
        index. (A list for one VM would be one call too, and a scan for the cloud rather than a lookup.)"""
        from google.cloud import compute_v1
        if len(names) == 1:
            return [self.to_node(self.api.call(self._instances().get, project=self.api.project, zone=req.zone,
                                               instance=names[0], at=req.region))]
        prefix = names[0].rsplit("-", 1)[0]
        request = compute_v1.ListInstancesRequest(
            project=self.api.project, zone=req.zone,
            filter=f"(labels.{LABEL_POOL} eq '{label_value(req.pool)}') (name eq '{prefix}-[0-9]+')")
        found = {i.name: i for i in self.api.call(self._instances().list, request=request, at=req.region)}
        missing = [n for n in names if n not in found]
        if missing:
            # What the per-VM get answered too: a VM of that name (adopted on alreadyExists) that is gone, or
            # is not this pool's (a name taken by someone else's VM).
            raise NotFoundError(f"instances {', '.join(missing)} of pool {req.pool!r} not found in zone {req.zone}",
                                provider="gcp", endpoint=self.api.endpoint, region=req.region, code="notFound")
        return [self.to_node(found[n]) for n in names]

    # -- read ----------------------------------------------------------------------------------
    def list_owned(self) -> list[Node]:
        from google.cloud import compute_v1
        request = compute_v1.AggregatedListInstancesRequest(project=self.api.project, filter=OWNER_FILTER)
        pager = self.api.call(self._instances().aggregated_list, request=request)
        nodes = []
        for _scope, scoped in pager:
            nodes += [self.to_node(i) for i in scoped.instances]
        return nodes

    def list_owned_in(self, zones: Sequence[str], region: str) -> list[Node]:
        """Ours in these zones of ``region``: one instances.list a zone (the aggregated list is global, so
        one region that does not answer would fail it for every region)."""
        from google.cloud import compute_v1
        nodes = []
        for zone in zones:
            request = compute_v1.ListInstancesRequest(project=self.api.project, zone=zone, filter=OWNER_FILTER)
            nodes += [self.to_node(i) for i in self.api.call(self._instances().list, request=request, at=region)]
        return nodes

    def to_node(self, inst: Any) -> Node:
        zone = last_segment(inst.zone)
        machine = last_segment(inst.machine_type)
        spot = inst.scheduling.provisioning_model == "SPOT" or bool(inst.scheduling.preemptible)
        state = _STATES.get(inst.status, NodeState.PENDING)
        if spot and state == NodeState.TERMINATED:
            state = NodeState.PREEMPTED      # Awan never stops its spot VMs; TERMINATED means reclaimed
        try:
            gpus = self.catalog.instance_type("gcp", machine).gpus
        except KeyError:
            gpus = sum(a.accelerator_count for a in inst.guest_accelerators)
        labels = dict(inst.labels)
        ctype = CapacityType.SPOT if spot else (
            CapacityType.RESERVED if inst.reservation_affinity.consume_reservation_type == "SPECIFIC_RESERVATION"
            else CapacityType.ON_DEMAND)
        return Node(provider="gcp", id=str(inst.id), name=inst.name, region=region_of(zone), zone=zone,
                    instance_type=machine, capacity_type=ctype,
                    state=state, pool=labels.get(LABEL_POOL, ""), workload=labels.get(LABEL_WORKLOAD, ""),
                    gpus=gpus, labels=labels)

    # -- delete --------------------------------------------------------------------------------
    def delete(self, nodes: Sequence[Node]) -> None:
        pending: list[tuple[Node, str]] = []
        for n in nodes:
            try:
                op = self.api.call(self._instances().delete, project=self.api.project, zone=n.zone,
                                   instance=n.name, at=n.region)
            except NotFoundError:
                continue
            pending.append((n, op.name))
        for n, op_name in pending:
            with contextlib.suppress(NotFoundError):
                self.api.wait_compute("zones", n.zone, op_name, n.region)

    # -- compact placement -----------------------------------------------------------------
    def ensure_placement_policy(self, region: str, name: str, vm_count: int | None = None,
                                idempotency_key: str = "") -> str:
        """Insert the policy (an existing one of that name is taken as is) and return its self link.

        The requestId is the caller's key for this incarnation of the policy, else a fresh one: GCE
        answers a repeated requestId with the first operation, so a fixed id per (region, name) would,
        after the policy was deleted, replay the old insert, create nothing, and fail the get."""
        from google.cloud import compute_v1
        client = self.api.compute("ResourcePoliciesClient")
        gp = compute_v1.ResourcePolicyGroupPlacementPolicy(collocation="COLLOCATED")
        if vm_count:
            gp.vm_count = vm_count
        policy = compute_v1.ResourcePolicy(name=name, group_placement_policy=gp)
        insert = compute_v1.InsertResourcePolicyRequest(project=self.api.project, region=region,
                                                        resource_policy_resource=policy,
                                                        request_id=request_id(
                                                            f"policy/{region}/{name}/{idempotency_key}", 0)
                                                        if idempotency_key else str(uuid.uuid4()))
        try:
            op = self.api.call(client.insert, request=insert, at=region)
            self.api.wait_compute("regions", region, op.name, region)
        except InvalidRequestError as e:
            if e.code != "alreadyExists":
                raise
        got = self.api.call(client.get, project=self.api.project, region=region, resource_policy=name, at=region)
        return str(got.self_link)

    def delete_placement_policy(self, region: str, name: str) -> None:
        client = self.api.compute("ResourcePoliciesClient")
        try:
            op = self.api.call(client.delete, project=self.api.project, region=region, resource_policy=name, at=region)
            self.api.wait_compute("regions", region, op.name, region)
        except NotFoundError:
            pass
