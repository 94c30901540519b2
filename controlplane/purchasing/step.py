"""The reconcile loop's purchasing step: propose purchases for demand that waits, then carry out the
approved ones (buying.py). Each pass reads the store afresh, so a pass after a crash continues where the
last one stopped.

Proposing: for each waiting workload (demand.py) without a live proposal, the cheapest fitting offering
(offers.py) becomes a row with its price, the reason and the demand it serves, if the budget has room for
it counting the proposals still open. In ``approve`` mode it stays ``proposed`` until a person approves it
(API/CLI); in ``auto`` mode the policy approves it and the same pass buys it. A workload whose proposal a
person rejected is not proposed again; one whose purchase failed, after ``retry_failed_s``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select

from controlplane.logs import get_logger
from controlplane.model.identity import workload_key
from controlplane.purchasing import buying, demand, offers
from controlplane.purchasing.ledger import COMMITTED, over_budget
from controlplane.purchasing.model import AUTO, OFF, PurchasingConfig
from controlplane.store import audit
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Purchase, PurchaseState, Workload, WorkloadState
from providers.base import Provider

log = get_logger("awan.purchasing")
LIVE = (PurchaseState.PROPOSED.value, *COMMITTED, PurchaseState.REJECTED.value)


def new_id() -> str:
    return f"pur-{uuid.uuid4().hex[:16]}"


class PurchaseStep:
    def __init__(self, db: Database, providers: Mapping[str, Provider],
                 source: Callable[[], PurchasingConfig | None], *, actor: str, fenced: Callable[[], bool],
                 clock: Callable[[], datetime] = utcnow, retry_failed_s: float = 600.0,
                 search_backoff_s: float = 60.0, searches_per_pass: int = 10) -> None:
        self.db, self.providers, self.source = db, providers, source
        self.actor, self.fenced, self.clock = actor, fenced, clock
        self.retry_failed_s, self.search_backoff_s = retry_failed_s, search_backoff_s
        # Each search asks the cloud (per region and type): a long queue is worked through over several
        # passes, highest priority first, rather than stalling one pass on hundreds of calls.
        self.searches_per_pass = searches_per_pass
        self._next_search: dict[str, float] = {}     # workload key -> monotonic time of its next search

    def config(self) -> PurchasingConfig | None:
        try:
            return self.source()
        except ValueError as e:   # an invalid stored document: nothing new is bought, open rows still finish
            log.warning("purchasing policy unusable", error=str(e))
            return None

    def tick(self) -> list[buying.Outcome]:
        if not self.fenced():
            return []
        cfg = self.config()
        if cfg is not None and cfg.mode != OFF:
            self.propose(cfg)
        return self.buy(cfg)

    # -- propose ---------------------------------------------------------------------------------------
    def _covered(self, cfg: PurchasingConfig) -> set[str]:
        """Workloads a purchase already serves (or a person declined for): not proposed for again. A bought
        block covers its workloads until it is about to end (a workload moved off it may need the next)."""
        now = utcnow()
        ending = self.clock() + (cfg.move_before_end or timedelta(0))
        with self.db.session() as s:
            rows = s.execute(select(Purchase.state, Purchase.demand, Purchase.updated_at, Purchase.ends_at)).all()
        out: set[str] = set()
        for state, dem, updated, ends_at in rows:
            if state == PurchaseState.BOUGHT.value and ends_at <= ending:
                continue
            if state in LIVE or (state == PurchaseState.FAILED.value
                                 and now - updated < timedelta(seconds=self.retry_failed_s)):
                out.update((dem or {}).get("workloads", []))
        return out

    def propose(self, cfg: PurchasingConfig) -> list[str]:
        covered = self._covered(cfg)
        made: list[str] = []
        mono = time.monotonic()
        searched = 0
        for d in demand.waiting(self.db):
            if d.key in covered or self._next_search.get(d.key, 0.0) > mono:
                continue
            if searched >= self.searches_per_pass:
                break
            searched += 1
            now = self.clock()
            found = offers.search(d, cfg, self.providers, now)
            if found.found is None:
                self._next_search[d.key] = mono + self.search_backoff_s
                log.info("no offering to propose", workload=d.key, notes=found.notes[:5])
                continue
            pid = self._write(cfg, d, found.found, now)
            if pid is None:
                self._next_search[d.key] = mono + self.search_backoff_s
            else:
                made.append(pid)
        return made

    def _write(self, cfg: PurchasingConfig, d: demand.Demand, f: offers.Found, now: datetime) -> str | None:
        o = f.offer
        with self.db.session() as s:
            if not self.fenced():
                return None
            # Counting what is still proposed too: approving every open proposal must stay within budget.
            why = over_budget(s, cfg.budget, o.upfront_fee, now,
                              states=(PurchaseState.PROPOSED.value, *COMMITTED))
            if why is not None:
                log.info("purchase not proposed", workload=d.key, why=why)
                return None
            pid = new_id()
            auto = cfg.mode == AUTO
            r = Purchase(
                id=pid, token=buying.token_for(pid), mode=cfg.mode, policy=cfg.name,
                state=PurchaseState.APPROVED.value if auto else PurchaseState.PROPOSED.value,
                provider=f.target.provider, region=o.region, zone=o.zone, instance_type=o.instance_type,
                ultraserver_type=o.ultraserver_type, ultraserver_count=o.ultraserver_count,
                instance_count=o.instance_count, gpus=f.gpus, offering_id=o.id, starts_at=o.starts_at,
                ends_at=o.ends_at, hours=o.hours, price=o.upfront_fee, price_per_gpu_hour=round(f.price_per_gpu_hour, 4),
                reason=offers.reason(d, f, now), demand={"workloads": [d.key], "gpus": d.workload.total_gpus,
                                                         "teams": [d.team]},
                decided_by=f"policy:{cfg.name}" if auto else "", decided_at=utcnow() if auto else None,
                message="approved by the policy (auto mode)" if auto else "waits for approval")
            s.add(r)
            s.flush()
            audit.record(s, actor=self.actor, action="purchase-proposed", kind="purchase", subject=pid,
                         team=d.team, details={"offering": o.id, "kind": f.kind, "price": o.upfront_fee, "reason": r.reason,
                                               "workloads": [d.key], "mode": cfg.mode})
            if auto:
                audit.record(s, actor=self.actor, action="purchase-approved", kind="purchase", subject=pid,
                             team=d.team, details={"by": r.decided_by})
            return pid

    # -- buy -------------------------------------------------------------------------------------------
    def buy(self, cfg: PurchasingConfig | None) -> list[buying.Outcome]:
        with self.db.session() as s:
            rows = s.execute(select(Purchase.id, Purchase.state).where(Purchase.state.in_(
                [PurchaseState.APPROVED.value, PurchaseState.BUYING.value])).order_by(Purchase.created_at)).all()
            waiting = {workload_key(team, name) for team, name in s.execute(
                select(Workload.team, Workload.name).where(Workload.state == WorkloadState.PENDING.value))} \
                if any(st == PurchaseState.APPROVED.value for _, st in rows) else set()
        out: list[buying.Outcome] = []
        for pid, state in rows:
            if state == PurchaseState.APPROVED.value:
                started = buying.start(self.db, pid, cfg, actor=self.actor, fenced=self.fenced, waiting=waiting)
                if started is None or started.state != PurchaseState.BUYING.value:
                    if started is not None:
                        out.append(started)
                    continue
            done = buying.complete(self.db, pid, self.providers, actor=self.actor, fenced=self.fenced)
            if done is not None:
                out.append(done)
        return out
