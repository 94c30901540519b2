"""A person's decision on a proposal (API and CLI): approve or reject one that is ``proposed``. Approving
does not buy: the loop's next pass does (buying.py), so the cloud is asked only by the leader."""

from __future__ import annotations

from controlplane.store import audit
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Purchase, PurchaseState


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


def decide(db: Database, purchase_id: str, *, approve: bool, actor: str, note: str = "") -> Purchase:
    with db.session() as s:
        r = s.get(Purchase, purchase_id, with_for_update=True)
        if r is None:
            raise NotFound(f"id: no purchase {purchase_id!r}")
        if r.state != PurchaseState.PROPOSED.value:
            raise Conflict(f"state: purchase {purchase_id} is {r.state}, only a proposed one can be "
                           f"{'approved' if approve else 'rejected'}")
        r.state = (PurchaseState.APPROVED if approve else PurchaseState.REJECTED).value
        r.decided_by, r.decided_at = actor, utcnow()
        r.message = ("approved; the next reconcile pass buys it" if approve else "rejected") + \
            (f": {note}" if note else "")
        audit.record(s, actor=actor, action="purchase-approved" if approve else "purchase-rejected",
                     kind="purchase", subject=r.id, team=((r.demand or {}).get("teams") or [None])[0], details={"offering": r.offering_id, "price": r.price,
                                                             "note": note[:500]})
        s.flush()
        s.expunge(r)
        return r
