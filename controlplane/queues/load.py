"""QueuePolicy documents -> one QueueConfig. Placement documents in the same text are skipped (and the
placement loader skips these), so one policy file or ``PUT /v1/policies`` body may hold both.

Several QueuePolicy documents merge: flavours and queues add up; a name defined twice is an error (it is
almost always a copy-paste slip); the last ``preemption`` section wins."""

from __future__ import annotations

from controlplane.model.manifest import documents_of_kind
from controlplane.queues.documents import QueuePolicyDocument
from controlplane.queues.model import FairStrategy, Flavour, Protection, Queue, QueueConfig, Quota

KIND = "QueuePolicy"


class QueueError(ValueError):
    """A queue policy that cannot be used; the message names the document and the field."""


def parse_queue_text(text: str, source: str = "policy document") -> QueueConfig:
    docs = documents_of_kind(QueueError, text, source, KIND, QueuePolicyDocument)
    return merge(docs)


def merge(docs: list[tuple[str, QueuePolicyDocument]]) -> QueueConfig:
    flavours: dict[str, Flavour] = {}
    queues: dict[str, Queue] = {}
    grace, protection = 0.0, Protection()
    fair: tuple[FairStrategy, ...] = ()
    teams: dict[str, str] = {}
    defined_at: dict[str, str] = {}
    for where, doc in docs:
        s = doc.spec
        for i, f in enumerate(s.flavours):
            if f.name in flavours:
                raise QueueError(f"{where}: spec.flavours[{i}].name: flavour {f.name!r} is defined twice")
            flavours[f.name] = Flavour(f.name, f.gpu_model, f.provider,
                                       f.capacity_type.value if f.capacity_type is not None else None)
        for i, q in enumerate(s.queues):
            at = f"{where}: spec.queues[{i}]"
            if q.name in queues:
                raise QueueError(f"{at}.name: queue {q.name!r} is defined twice")
            defined_at[q.name] = at
            quotas: dict[str, Quota] = {}
            for j, qd in enumerate(q.quotas):
                if qd.flavour in quotas:
                    raise QueueError(f"{at}.quotas[{j}].flavour: {qd.flavour!r} is given twice")
                if qd.lending_limit is not None and qd.lending_limit > qd.nominal:
                    raise QueueError(f"{at}.quotas[{j}].lendingLimit: {qd.lending_limit} is more than "
                                     f"nominal {qd.nominal}")
                quotas[qd.flavour] = Quota(qd.nominal, qd.borrowing_limit, qd.lending_limit)
            for t in q.teams:
                if t in teams:
                    raise QueueError(f"{at}.teams: team {t!r} is already served by queue {teams[t]!r} "
                                     "(a team has one default queue)")
                teams[t] = q.name
            queues[q.name] = Queue(q.name, tuple(q.teams), q.cohort, q.weight, quotas,
                                   q.preemption.within_queue, q.preemption.reclaim_within_cohort)
        if s.preemption is not None:
            grace = s.preemption.grace_period_seconds
            p = s.preemption.protect
            protection = Protection(None if p.running_longer_than_hours is None
                                    else p.running_longer_than_hours * 3600.0, p.priority_at_least)
            fair = () if s.preemption.fair_sharing is None else tuple(s.preemption.fair_sharing.preemption_strategies)
    # Flavours are checked once all documents are read: a queue may name a flavour a later document defines.
    for name, queue in queues.items():
        for j, fl in enumerate(queue.quotas):
            if fl not in flavours:
                raise QueueError(f"{defined_at[name]}.quotas[{j}].flavour: unknown flavour {fl!r} "
                                 f"(defined: {', '.join(sorted(flavours)) or 'none'})")
    return QueueConfig(flavours, queues, grace, protection, tuple(w for w, _ in docs), fair)
