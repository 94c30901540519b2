"""The durable store: SQLAlchemy 2 models, Alembic migrations, and the repositories the API and loop use."""

from controlplane.store.db import Database, make_engine
from controlplane.store.migrate import upgrade

__all__ = ["Database", "make_engine", "upgrade"]
