"""Cloud TPU v2 wire format: nodes, queued resources, accelerator types and google.longrunning operations."""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from mockclouds.gcp.backend import GCPBackend
from mockclouds.gcp.errors import invalid
from mockclouds.gcp.responses_common import body_of, flag, json_response
from mockclouds.gcp.tpu import LongRunning, QueuedResource, TpuNode

_T = "type.googleapis.com/google.cloud.tpu.v2."


def node_json(n: TpuNode) -> dict:
    out = {"name": n.path, "acceleratorType": n.accelerator_type, "state": n.state, "labels": n.labels,
           "runtimeVersion": n.runtime_version, "id": n.id, "createTime": n.created, "apiVersion": "V2",
           "schedulingConfig": {"spot": n.spot},
           "networkEndpoints": [{"ipAddress": "10.128.0.2", "port": 8470}]}
    if n.queued_resource:
        out["queuedResource"] = f"projects/{n.project}/locations/{n.zone}/queuedResources/{n.queued_resource}"
    return out


def queued_json(q: QueuedResource) -> dict:
    state: dict = {"state": q.state}
    if q.state == "FAILED":
        state["failedData"] = {"error": {"code": 8, "message": q.error}}
    out = {"name": q.path, "createTime": q.created, "state": state,
           "tpu": {"nodeSpec": [{"parent": f"projects/{q.project}/locations/{q.zone}", "nodeId": nid, "node": body}
                                for nid, body in q.specs]}}
    out["spot" if q.spot else "guaranteed"] = {}
    return out


def lro_json(op: LongRunning) -> dict:
    out: dict = {"name": op.name, "done": op.done,
                 "metadata": {"@type": _T + "OperationMetadata", "target": op.target, "verb": op.verb,
                              "apiVersion": "v2"}}
    if op.done and op.error:
        out["error"] = op.error
    elif op.done and op.verb == "delete":
        out["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    elif op.done and isinstance(op.result, TpuNode):
        out["response"] = {"@type": _T + "Node", **node_json(op.result)}
    elif op.done and isinstance(op.result, QueuedResource):
        out["response"] = {"@type": _T + "QueuedResource", **queued_json(op.result)}
    return out


def nodes_create(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response(lro_json(b.tpu.create_node(project, zone, r.args.get("nodeId", ""), body_of(r))))


def nodes_get(b: GCPBackend, r: Request, project: str, zone: str, node: str) -> Response:
    return json_response(node_json(b.tpu.get_node(project, zone, node)))


def nodes_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"nodes": [node_json(n) for n in b.tpu.list_nodes(project, zone)]})


def nodes_delete(b: GCPBackend, r: Request, project: str, zone: str, node: str) -> Response:
    return json_response(lro_json(b.tpu.delete_node(project, zone, node)))


def queued_create(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    qr_id = r.args.get("queuedResourceId", "")
    if not qr_id:
        raise invalid("queued_resource_id is required")
    return json_response(lro_json(b.tpu.create_queued(project, zone, qr_id, body_of(r))))


def queued_get(b: GCPBackend, r: Request, project: str, zone: str, qr: str) -> Response:
    return json_response(queued_json(b.tpu.get_queued(project, zone, qr)))


def queued_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"queuedResources": [queued_json(q) for q in b.tpu.list_queued(project, zone)]})


def queued_delete(b: GCPBackend, r: Request, project: str, zone: str, qr: str) -> Response:
    return json_response(lro_json(b.tpu.delete_queued(project, zone, qr, flag(r, "force"))))


def accelerator_types(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"acceleratorTypes": [
        {"name": f"projects/{project}/locations/{zone}/acceleratorTypes/{t}", "type": t}
        for t in b.tpu.accelerator_types(zone)]})


def operations_get(b: GCPBackend, r: Request, project: str, zone: str, operation: str) -> Response:
    return json_response(lro_json(b.tpu.operation(f"projects/{project}/locations/{zone}/operations/{operation}")))


HANDLERS: dict[str, Callable[..., Response]] = {
    "nodes.create": nodes_create, "nodes.get": nodes_get, "nodes.list": nodes_list, "nodes.delete": nodes_delete,
    "queuedResources.create": queued_create, "queuedResources.get": queued_get,
    "queuedResources.list": queued_list, "queuedResources.delete": queued_delete,
    "acceleratorTypes.tpuList": accelerator_types, "operations.get": operations_get,
}
