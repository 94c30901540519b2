"""What the budget has left: dollars committed by purchases approved, being bought or bought (and, when
deciding whether to propose more, those still proposed), over the policy's life and its rolling period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controlplane.purchasing.model import Budget
from controlplane.store.models import Purchase, PurchaseState

COMMITTED = (PurchaseState.APPROVED.value, PurchaseState.BUYING.value, PurchaseState.BOUGHT.value)


def spent(s: Session, states: Sequence[str], since: datetime | None = None, exclude: str | None = None) -> float:
    q = select(func.coalesce(func.sum(Purchase.price), 0.0)).where(Purchase.state.in_(list(states)))
    if since is not None:
        q = q.where(Purchase.created_at >= since)
    if exclude is not None:
        q = q.where(Purchase.id != exclude)
    return float(s.scalar(q) or 0.0)


def over_budget(s: Session, budget: Budget, price: float, now: datetime, *, states: Sequence[str] = COMMITTED,
                exclude: str | None = None) -> str | None:
    """Why spending ``price`` more would break the budget, or None when it fits."""
    if budget.total is not None:
        used = spent(s, states, exclude=exclude)
        if used + price > budget.total + 1e-6:
            return (f"budget.total: ${price:,.2f} more would make ${used + price:,.2f}, over ${budget.total:,.2f}")
    if budget.per_period is not None and budget.period is not None:
        used = spent(s, states, since=now - budget.period, exclude=exclude)
        if used + price > budget.per_period + 1e-6:
            return (f"budget.perPeriod: ${price:,.2f} more would make ${used + price:,.2f} in the last "
                    f"{budget.period}, over ${budget.per_period:,.2f}")
    return None
