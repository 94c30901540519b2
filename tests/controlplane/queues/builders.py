"""Small builders for queue configurations and workloads (dataclasses, no YAML)."""

from __future__ import annotations

from controlplane.queues import Admitted, Flavour, Pending, Protection, Queue, QueueConfig, Quota


def config(*queues: Queue, protection: Protection | None = None) -> QueueConfig:
    return QueueConfig(flavours={"h100": Flavour("h100", "H100"), "b200": Flavour("b200", "B200")},
                       queues={q.name: q for q in queues}, protection=protection or Protection())


def queue(name: str, nominal: int, *, cohort: str | None = "ml", weight: float = 1.0,
          borrow: int | None = None, lend: int | None = None, flavour: str = "h100", **kw: object) -> Queue:
    return Queue(name, (name,), cohort, weight, {flavour: Quota(nominal, borrow, lend)}, **kw)  # type: ignore[arg-type]


def pend(key: str, q: str | None, gpus: int, *, priority: int = 0, arrival: float = 0.0,
         model: str = "H100") -> Pending:
    return Pending(key, q, gpus, (model,), priority=priority, arrival=arrival)


def held(key: str, q: str, gpus: int, *, priority: int = 0, running_since: float | None = None,
         flavour: str = "h100", admitted_at: float = 0.0, preempted_for: str | None = None) -> Admitted:
    return Admitted(key, q, flavour, gpus, priority, admitted_at, running_since, None, preempted_for)
