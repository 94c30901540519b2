from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401
