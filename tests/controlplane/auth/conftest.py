from tests.controlplane.api.conftest import client, tokens  # noqa: F401
from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401
