"""Queues, quotas with borrowing, fair share and preemption (issue 11).

Pure admission logic: ``documents`` (pydantic, the edge) -> ``model`` (dataclasses) -> ``admission`` (one
admission cycle over a snapshot of usage and pending work, with ``fairshare`` ordering queues and
``preemption`` choosing victims). The reconcile loop's gate lives in ``controlplane/reconcile/admitting.py``.
"""

from controlplane.queues.admission import Admitted, Cycle, Pending, Preemption, Waiting, admit
from controlplane.queues.load import QueueError, parse_queue_text
from controlplane.queues.model import Flavour, Protection, Queue, QueueConfig, Quota

__all__ = ["Admitted", "Cycle", "Flavour", "Pending", "Preemption", "Protection", "Queue", "QueueConfig",
           "QueueError", "Quota", "Waiting", "admit", "parse_queue_text"]
