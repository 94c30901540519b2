"""Buying one approved proposal, idempotent and crash-safe.

PurchaseCapacityBlock takes no client token, so the token is a tag: every block Awan buys carries
``awan:purchase=<token>`` (the token is derived from the proposal id). The row moves to ``buying`` in its
own committed transaction *before* the cloud is asked; the answer is written after. A controller killed in
between finds the row still ``buying`` on its next pass and first looks the purchase up by that tag: found,
the row is ``bought`` (nothing is bought again); not found, the cloud never took the order, so it is placed
now. The same path serves the first attempt and every retry.

A GCP future reservation (provider gcp) follows the same path with its name as the token: GCE names are
unique per zone, so the row's token *is* the resource name, looked up before any request (and the request
carries it as requestId too)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from controlplane.logs import get_logger
from controlplane.purchasing.ledger import over_budget
from controlplane.purchasing.model import FUTURE_RESERVATION, PurchasingConfig, kind_of
from controlplane.store import audit
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Purchase, PurchaseState
from providers.base import Provider
from providers.capabilities import CapacityBlockOffer, CapacityBlockPurchase, FutureReservationRequest
from providers.errors import ProviderError

log = get_logger("awan.purchasing")
TAG = "awan:purchase"
# Procurement statuses in which Google will not deliver a future reservation
DECLINED = frozenset({"DECLINED", "CANCELLED", "FAILED"})


def token_for(purchase_id: str) -> str:
    return f"awan-{purchase_id}"


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    state: str
    message: str = ""


def offer_of(r: Purchase) -> CapacityBlockOffer:
    return CapacityBlockOffer(r.offering_id, r.region, r.zone, r.instance_type, r.instance_count, r.starts_at,
                              r.ends_at, r.hours, r.price, r.ultraserver_type, r.ultraserver_count)


def _audit(s: Session, r: Purchase, actor: str, action: str, **details: object) -> None:
    teams = (r.demand or {}).get("teams") or [None]
    audit.record(s, actor=actor, action=action, kind="purchase", subject=r.id, team=teams[0],
                 details={"offering": r.offering_id, "provider": r.provider, "region": r.region,
                          "instanceType": r.instance_type, "price": r.price, **details})


def start(db: Database, purchase_id: str, cfg: PurchasingConfig | None, *, actor: str,
          fenced: Callable[[], bool], waiting: Collection[str] | None = None) -> Outcome | None:
    """approved -> buying (budget checked again: proposals approved together may not all fit; and some of
    its workloads must still wait, ``waiting`` being the Pending ones: a proposal approved after its demand
    was placed elsewhere or deleted buys nothing), in one committed transaction. None when the row is not
    approved (any more) or we lost the lead."""
    with db.session() as s:
        if not fenced():
            return None
        r = s.get(Purchase, purchase_id, with_for_update=True)
        if r is None or r.state != PurchaseState.APPROVED.value:
            return None
        now = utcnow()
        wanted = (r.demand or {}).get("workloads") or []
        why = over_budget(s, cfg.budget, r.price, now, exclude=r.id) if cfg is not None else \
            "no PurchasingPolicy is in force any more"
        if why is None and waiting is not None and wanted and not set(wanted) & set(waiting):
            why = f"its workloads ({', '.join(wanted)}) no longer wait for capacity (placed or deleted)"
        if why is not None:
            r.state, r.message = PurchaseState.FAILED.value, f"not bought: {why}"[:1000]
            _audit(s, r, actor, "purchase-failed", why=why)
            return Outcome(r.id, r.state, r.message)
        r.state, r.message = PurchaseState.BUYING.value, "buying"
        _audit(s, r, actor, "purchase-buying")
        return Outcome(r.id, r.state)


def complete(db: Database, purchase_id: str, providers: Mapping[str, Provider], *, actor: str,
             fenced: Callable[[], bool]) -> Outcome | None:
    """A ``buying`` row: look the purchase up by its token, buy only if the cloud has none, record the end."""
    with db.session() as s:
        r = s.get(Purchase, purchase_id)
        if r is None or r.state != PurchaseState.BUYING.value:
            return None
        s.expunge(r)
    p = providers.get(r.provider)
    if p is not None and kind_of(r.provider) == FUTURE_RESERVATION:
        return _request_future(db, r, p, actor, fenced)
    blocks = p.supports_capacity_blocks() if p is not None else None
    lookup = p.supports_reservations() if p is not None else None
    if blocks is None or lookup is None:
        return _finish(db, r.id, actor, fenced, error=f"provider {r.provider!r} is not configured, or cannot "
                       "buy and find Capacity Blocks", retryable=True)
    try:
        found = lookup.find_reservation(r.region, TAG, r.token)
        how = "found by its token (bought before a restart)" if found is not None else "bought"
        if found is None:
            found = blocks.purchase_capacity_block_offer(CapacityBlockPurchase(
                offer_of(r), tags={TAG: r.token, "awan:managed-by": "awan", "Name": f"awan-{r.id}"}))
    except ProviderError as e:
        return _finish(db, r.id, actor, fenced, error=f"{type(e).__name__}: {e}", retryable=e.retryable)
    return _finish(db, r.id, actor, fenced, bought=found.id, how=how)


def _request_future(db: Database, r: Purchase, p: Provider, actor: str, fenced: Callable[[], bool]) -> Outcome | None:
    """A GCP future reservation named by the token (a valid GCE name: ``awan-pur-<hex>``): looked up by that
    name first, requested only when GCE has none; the reservation GCE creates at the start carries the same
    name, which is the pool id placement sees before and after the start."""
    fr = p.supports_future_reservations()
    if fr is None:
        return _finish(db, r.id, actor, fenced, error=f"provider {r.provider!r} cannot request future "
                       "reservations", retryable=True)
    try:
        found = fr.find_future_reservation(r.zone, r.token)
        how = "found by its name (requested before a restart)" if found is not None else "requested"
        if found is None:
            found = fr.request_future_reservation(FutureReservationRequest(
                r.zone, r.token, r.instance_type, r.instance_count, r.starts_at, r.ends_at,
                reservation_name=r.token, idempotency_token=r.token, calendar=True))
    except ProviderError as e:
        return _finish(db, r.id, actor, fenced, error=f"{type(e).__name__}: {e}", retryable=e.retryable)
    if found.status in DECLINED:
        return _finish(db, r.id, actor, fenced, error=f"Google Cloud {found.status.lower()} future reservation "
                       f"{found.name} ({how})")
    return _finish(db, r.id, actor, fenced, bought=found.reservation_id, how=f"{how}, {found.status}")


def _finish(db: Database, purchase_id: str, actor: str, fenced: Callable[[], bool], *,
            bought: str | None = None, how: str = "", error: str = "", retryable: bool = False) -> Outcome | None:
    with db.session() as s:
        if not fenced():
            return None      # the next leader finds the row buying and looks it up: nothing is lost
        r = s.get(Purchase, purchase_id, with_for_update=True)
        if r is None or r.state != PurchaseState.BUYING.value:
            return None
        if bought is not None:
            r.state, r.reservation_id, r.bought_at = PurchaseState.BOUGHT.value, bought, utcnow()
            r.message = f"{how}: {bought}"
            _audit(s, r, actor, "purchase-bought", reservation=bought, how=how)
            log.info("purchase bought", purchase=r.id, reservation=bought, price=r.price, how=how)
        elif retryable:
            r.message = f"will retry: {error}"[:1000]      # stays buying: the next pass looks up, then buys
        else:
            r.state, r.message = PurchaseState.FAILED.value, f"not bought: {error}"[:1000]
            _audit(s, r, actor, "purchase-failed", why=error[:500])
        return Outcome(r.id, r.state, r.message)
