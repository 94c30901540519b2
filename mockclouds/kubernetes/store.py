"""Objects of every kind, with the apiserver's metadata semantics and a watch history.

Stored objects are never mutated in place: every write stores a fresh dict, so a watch event can
keep a reference to the snapshot it describes. Callers get deep copies.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mockclouds.kubernetes.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from mockclouds.kubernetes.resources import NAMESPACES, ResourceType

Obj = dict[str, Any]
Matcher = Callable[[Obj], bool]

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    rv: int
    plural: str
    type: str          # ADDED | MODIFIED | DELETED
    obj: Obj


def _label_problems(labels: Any) -> list[tuple[str, str]]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [("metadata.labels", "must be a map of string to string")]
    out = []
    for k, v in labels.items():
        prefix, _, name = str(k).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))) or len(name) > 63 or \
                not _LABEL_NAME.fullmatch(name):
            out.append((f"metadata.labels[{k}]", "name part must consist of alphanumeric characters, '-', "
                        "'_' or '.', start and end with one, and be at most 63 characters"))
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.fullmatch(v):
            out.append((f"metadata.labels[{k}]", f"Invalid value: {v!r}: a valid label value must be 63 "
                        "characters or less, alphanumeric, '-', '_' or '.'"))
    return out


class ObjectStore:
    def __init__(self, history: int = 4096) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._objs: dict[str, dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._events: list[WatchEvent] = []
        self._base = 0                 # absolute index of self._events[0]
        self._floor_rv = 0             # watches from an older resourceVersion get 410 Expired
        self._history = history
        self._epoch = 0                # bumped by clear(): open watches end
        # Called with every event as it is recorded, under the lock: the cluster's informer, which turns
        # writes into work-queue keys (it must not write to the store).
        self._listeners: list[Callable[[WatchEvent], None]] = []

    def subscribe(self, listener: Callable[[WatchEvent], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    @property
    def lock(self) -> threading.RLock:
        """Held by the controller to make one reconcile atomic with respect to other writers."""
        return self._cond  # type: ignore[return-value]

    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def clear(self) -> None:
        with self._cond:
            self._objs.clear()
            self._base += len(self._events)
            self._events.clear()
            self._floor_rv = self._rv
            self._epoch += 1
            self._cond.notify_all()

    # -- reads ---------------------------------------------------------------------------------
    def peek(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        """The stored object itself, not a copy: only for a caller that holds ``lock`` and only reads it
        (stored objects are never mutated in place, so the reference stays a valid snapshot)."""
        with self._cond:
            return self._objs.get(rt.plural, {}).get((ns if rt.namespaced else "", name))

    def try_get(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        with self._cond:
            o = self._objs.get(rt.plural, {}).get((ns if rt.namespaced else "", name))
            return copy.deepcopy(o) if o is not None else None

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        o = self.try_get(rt, ns, name)
        if o is None:
            raise not_found(rt.plural, rt.group, name)
        return o

    def list(self, rt: ResourceType, ns: str | None, match: Matcher | None = None,
             *, copy_out: bool = True, ordered: bool = True) -> tuple[list[Obj], int]:
        """``copy_out=False`` hands out the stored objects themselves: only for a caller that holds
        ``lock`` and only reads them (the controller counting nodes per rack)."""
        with self._cond:
            # Filter, then sort and copy what matched (not every object of the kind).
            hits = [(key, o) for key, o in self._objs.get(rt.plural, {}).items()
                    if (ns is None or not rt.namespaced or key[0] == ns) and (match is None or match(o))]
            if ordered:         # callers inside the controllers may take insertion order, which is stable
                hits.sort(key=lambda kv: kv[0])
            items = [o for _, o in hits]
            return (copy.deepcopy(items) if copy_out else items), self._rv

    # -- writes --------------------------------------------------------------------------------
    def _record(self, rt: ResourceType, type_: str, obj: Obj) -> None:
        ev = WatchEvent(self._rv, rt.plural, type_, obj)
        self._events.append(ev)
        for listener in self._listeners:
            listener(ev)
        if len(self._events) > self._history:
            drop = len(self._events) - self._history
            self._floor_rv = self._events[drop - 1].rv
            del self._events[:drop]
            self._base += drop
        self._cond.notify_all()

    def _validate_meta(self, rt: ResourceType, name: str, meta: Obj) -> None:
        causes: list[tuple[str, str]] = []
        pattern = _DNS_LABEL if rt is NAMESPACES else _DNS_SUBDOMAIN
        limit = 63 if rt is NAMESPACES else 253
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif len(name) > limit or not pattern.fullmatch(name):
            causes.append(("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 name must consist "
                           "of lower case alphanumeric characters, '-' or '.'"))
        causes += _label_problems(meta.get("labels"))
        ann = meta.get("annotations")
        if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
            causes.append(("metadata.annotations", "must be a map of string to string"))
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)

    def create(self, rt: ResourceType, ns: str, body: Obj, keep_status: bool = False) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        with self._cond:
            name = meta.get("name") or ""
            if not name and meta.get("generateName"):
                name = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            self._validate_meta(rt, name, meta)
            if rt.namespaced:
                if meta.get("namespace") not in (None, "", ns):
                    raise bad_request("the namespace of the provided object does not match the namespace "
                                      "sent on the request")
                if ("", ns) not in self._objs.get(NAMESPACES.plural, {}):
                    raise not_found(NAMESPACES.plural, "", ns)
            key = (ns if rt.namespaced else "", name)
            bucket = self._objs.setdefault(rt.plural, {})
            if key in bucket:
                raise already_exists(rt.plural, rt.group, name)
            self._rv += 1
            meta.update(name=name, uid=str(uuid.uuid4()), resourceVersion=str(self._rv),
                        creationTimestamp=now_rfc3339(), generation=1)
            meta.pop("deletionTimestamp", None)
            if rt.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            if rt.status_subresource and not keep_status:
                obj.pop("status", None)
            bucket[key] = obj
            self._record(rt, "ADDED", obj)
            return copy.deepcopy(obj)

    def update(self, rt: ResourceType, ns: str, name: str, body: Obj, *, status: bool = False,
               check_rv: bool = True) -> Obj:
        """PUT semantics. ``status`` True: the status subresource (only .status changes); else the main
        resource (for kinds with a status subresource, .status is kept as stored)."""
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        with self._cond:
            key = (ns if rt.namespaced else "", name)
            cur = self._objs.get(rt.plural, {}).get(key)
            if cur is None:
                raise not_found(rt.plural, rt.group, name)
            meta = body.get("metadata")
            meta_in = meta if isinstance(meta, dict) else {}
            if meta_in.get("name") not in (None, name):
                raise bad_request(f"the name of the object ({meta_in.get('name')}) does not match the name "
                                  f"on the URL ({name})")
            want_rv = meta_in.get("resourceVersion")
            if check_rv and want_rv not in (None, "") and str(want_rv) != cur["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            if status:
                new = copy.deepcopy(cur)
                if "status" in body:
                    new["status"] = copy.deepcopy(body["status"])
            else:
                new = copy.deepcopy(body)
                meta = new.setdefault("metadata", {})
                self._validate_meta(rt, name, meta)
                for k in ("uid", "creationTimestamp", "generation", "namespace"):
                    if k in cur["metadata"]:
                        meta[k] = cur["metadata"][k]
                    else:
                        meta.pop(k, None)
                meta["name"] = name
                if rt.status_subresource:
                    if "status" in cur:
                        new["status"] = copy.deepcopy(cur["status"])
                    else:
                        new.pop("status", None)
                new["apiVersion"], new["kind"] = rt.api_version, rt.kind
                changed = {k: v for k, v in new.items() if k not in ("metadata", "status", "apiVersion", "kind")}
                before = {k: v for k, v in cur.items() if k not in ("metadata", "status", "apiVersion", "kind")}
                if changed != before:
                    meta["generation"] = int(cur["metadata"].get("generation", 1)) + 1
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if new == cur:
                return copy.deepcopy(cur)       # a no-op write does not bump resourceVersion
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            self._objs[rt.plural][key] = new
            self._record(rt, "MODIFIED", new)
            return copy.deepcopy(new)

    def delete(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self._cond:
            key = (ns if rt.namespaced else "", name)
            cur = self._objs.get(rt.plural, {}).pop(key, None)
            if cur is None:
                raise not_found(rt.plural, rt.group, name)
            self._rv += 1
            gone = copy.deepcopy(cur)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._record(rt, "DELETED", gone)
            return copy.deepcopy(gone)

    # -- watch ---------------------------------------------------------------------------------
    def watch(self, rt: ResourceType, ns: str | None, match: Matcher, since: int | None,
              timeout_s: float) -> Iterator[tuple[str, Obj]]:
        """Events for one kind: with ``since`` None or 0, synthetic ADDED for what exists, then changes;
        else the changes after ``since`` (410 Expired when that is older than the history kept)."""
        deadline = time.monotonic() + timeout_s

        def wanted(o: Obj) -> bool:
            return (ns is None or not rt.namespaced or o["metadata"].get("namespace") == ns) and match(o)

        with self._cond:
            epoch = self._epoch
            if since:
                if since < self._floor_rv:
                    raise ApiError(410, "Expired", f"too old resource version: {since} ({self._floor_rv})")
                pos = self._base + sum(1 for e in self._events if e.rv <= since)
                initial: list[Obj] = []
            else:
                pos = self._base + len(self._events)
                initial = [o for o in self._objs.get(rt.plural, {}).values() if wanted(o)]
        for o in initial:
            yield "ADDED", copy.deepcopy(o)
        while True:
            with self._cond:
                while pos >= self._base + len(self._events) and epoch == self._epoch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._cond.wait(min(left, 1.0))
                if epoch != self._epoch:
                    return
                batch = self._events[max(0, pos - self._base):]
                pos = self._base + len(self._events)
            for ev in batch:
                if ev.plural == rt.plural and wanted(ev.obj):
                    yield ev.type, copy.deepcopy(ev.obj)
