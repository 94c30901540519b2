"""Small builders for queue configurations and workloads (dataclasses, no YAML)."""

from __future__ import annotations

from hypothesis import strategies as st

from controlplane.queues import Admitted, Flavour, Pending, Protection, Queue, QueueConfig, Quota

HOUR = 3600.0


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


@st.composite
def fleets(draw: st.DrawFn) -> QueueConfig:
    n = draw(st.integers(2, 6))
    queues = []
    for i in range(n):
        quotas = {}
        for f in draw(st.lists(st.sampled_from(["h100", "b200"]), min_size=1, max_size=2, unique=True)):
            nominal = draw(st.integers(0, 32))
            quotas[f] = Quota(nominal, draw(st.none() | st.integers(0, 32)),
                              draw(st.none() | st.integers(0, nominal)))
        queues.append(Queue(f"q{i}", (f"q{i}",), draw(st.sampled_from(["ml", "ml", "other", None])),
                            draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])), quotas,
                            draw(st.sampled_from(["LowerPriority", "Never"])),
                            draw(st.sampled_from(["Any", "LowerPriority", "Never"]))))
    return QueueConfig({"h100": Flavour("h100", "H100"), "b200": Flavour("b200", "B200")},
                       {q.name: q for q in queues}, protection=Protection(2 * HOUR, 500))
