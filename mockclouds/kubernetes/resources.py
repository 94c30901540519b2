"""The resource kinds the fake serves and the discovery documents that describe them.

kubectl 1.32 asks for aggregated discovery first; answering the legacy documents with a plain
``application/json`` content type makes it fall back, exactly as against a pre-1.26 apiserver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COREWEAVE_GROUP = "compute.coreweave.com"
COREWEAVE_VERSION = "v1alpha1"

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str          # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    status_subresource: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_version(self) -> str:
        return self.api_version


NAMESPACES = ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, True, ("ns",))
NODES = ResourceType("", "v1", "nodes", "node", "Node", False, True, ("no",))
PODS = ResourceType("", "v1", "pods", "pod", "Pod", True, True, ("po",))
CONFIGMAPS = ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, False, ("cm",))
SECRETS = ResourceType("", "v1", "secrets", "secret", "Secret", True, False)
SERVICES = ResourceType("", "v1", "services", "service", "Service", True, True, ("svc",))
EVENTS = ResourceType("", "v1", "events", "event", "Event", True, False, ("ev",))
JOBS = ResourceType("batch", "v1", "jobs", "job", "Job", True, True)
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, True, ("deploy",))
REPLICASETS = ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, True, ("rs",))
NODEPOOLS = ResourceType(COREWEAVE_GROUP, COREWEAVE_VERSION, "nodepools", "nodepool", "NodePool", False, True,
                         ("np",))

RESOURCES: tuple[ResourceType, ...] = (NAMESPACES, NODES, PODS, CONFIGMAPS, SECRETS, SERVICES, EVENTS, JOBS,
                                       DEPLOYMENTS, REPLICASETS, NODEPOOLS)
_BY_GV_PLURAL = {(r.group_version, r.plural): r for r in RESOURCES}


def lookup(group_version: str, plural: str) -> ResourceType | None:
    return _BY_GV_PLURAL.get((group_version, plural))


def group_versions() -> dict[str, list[ResourceType]]:
    out: dict[str, list[ResourceType]] = {}
    for r in RESOURCES:
        out.setdefault(r.group_version, []).append(r)
    return out


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _api_group(group: str) -> dict[str, Any]:
    versions = sorted({r.version for r in RESOURCES if r.group == group})
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group(group: str) -> dict[str, Any] | None:
    return _api_group(group) if any(r.group == group for r in RESOURCES if r.group) else None


def api_group_list() -> dict[str, Any]:
    groups = sorted({r.group for r in RESOURCES if r.group})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group(g) for g in groups]}


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    rs = group_versions().get(group_version)
    if not rs:
        return None
    entries: list[dict[str, Any]] = []
    for r in rs:
        entries.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names)})
        if r.status_subresource:
            entries.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if r.plural == "pods":
            entries.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                            "verbs": ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def version_info() -> dict[str, str]:
    return {"major": "1", "minor": "32", "gitVersion": "v1.32.4+awan-mock-cks", "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.8",
            "compiler": "gc", "platform": "linux/amd64"}
