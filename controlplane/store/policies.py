"""The policy document in force, kept in the DB so every replica places by the same rules."""

from __future__ import annotations

from sqlalchemy import select

from controlplane.store.db import Database
from controlplane.store.models import PolicyDocument

CURRENT = "current"


def get_document(db: Database) -> tuple[str, str] | None:
    """(document, updated_by) or None when none was ever put."""
    with db.session() as s:
        row = s.scalars(select(PolicyDocument).where(PolicyDocument.name == CURRENT)).first()
        return None if row is None else (row.document, row.updated_by)


def put_document(s, document: str, actor: str) -> None:  # type: ignore[no-untyped-def]
    row = s.scalars(select(PolicyDocument).where(PolicyDocument.name == CURRENT).with_for_update()).first()
    if row is None:
        s.add(PolicyDocument(name=CURRENT, document=document, updated_by=actor))
    else:
        row.document, row.updated_by = document, actor
