"""A controller's purchasing passes in a process of its own, for the SIGKILL test: the real step, store
and AWS adapter (boto3 over HTTP to the mock). ``pause``: ``before`` stops (sleeping, to be killed) just
before the cloud is asked to buy, ``after`` just after it answered and before the answer is recorded;
``none`` runs passes until killed."""

from __future__ import annotations

import sys
import time

from controlplane.purchasing import PurchasingSource
from controlplane.purchasing.step import PurchaseStep
from controlplane.reconcile.policy_source import PolicySource
from controlplane.store.db import Database
from providers.aws.adapter import AWSProvider
from providers.capabilities import (
    CapacityBlockOffer,
    CapacityBlockPurchase,
    CapacityBlockQuery,
    Reservation,
    SupportsCapacityBlocks,
)
from providers.config import load_config


class Pausing(SupportsCapacityBlocks):
    def __init__(self, inner: SupportsCapacityBlocks, pause: str) -> None:
        self.inner, self.pause = inner, pause

    def find_capacity_blocks(self, query: CapacityBlockQuery) -> list[CapacityBlockOffer]:
        return self.inner.find_capacity_blocks(query)

    def purchase_capacity_block_offer(self, purchase: CapacityBlockPurchase) -> Reservation:
        if self.pause == "before":
            print("PAUSED before the cloud call", flush=True)
            time.sleep(3600)
        out = self.inner.purchase_capacity_block_offer(purchase)
        if self.pause == "after":
            print(f"PAUSED after the cloud call {out.id}", flush=True)
            time.sleep(3600)
        return out


class ChildAWS(AWSProvider):
    pause = "none"

    def supports_capacity_blocks(self) -> SupportsCapacityBlocks | None:
        return Pausing(self, self.pause)


def main(url: str, config: str, pause: str) -> None:
    db = Database.from_url(url)
    aws = ChildAWS(load_config(config).providers["aws"].model_copy(update={"regions": ["us-east-1"]}))
    aws.pause = pause
    step = PurchaseStep(db, {"aws": aws}, PurchasingSource(PolicySource(db).document).current,
                        actor="controller:child", fenced=lambda: True)
    n = 0
    while True:
        out = step.tick()
        n += 1
        print(f"pass {n} {[(o.id, o.state) for o in out]}", flush=True)
        time.sleep(0.05)


if __name__ == "__main__":
    main(*sys.argv[1:4])
