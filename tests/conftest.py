"""One place that starts the mock clouds once per test session (each cloud only when first asked for)."""

from __future__ import annotations

import importlib
import os

import pytest

from mockclouds.launcher import _MODULES, CLOUDS, MockClouds
from mockclouds.serving import RunningServer
from providers.config import AwanConfig

_servers: dict[str, RunningServer] = {}


def _server(cloud: str) -> RunningServer:
    if cloud not in _servers:
        _servers[cloud] = importlib.import_module(_MODULES[cloud]).start("127.0.0.1", 0)
    return _servers[cloud]


# The default bound (pyproject's timeout = 300 s) is for fast tests. Slow suites run real processes (make run,
# services, replicas), which a loaded machine slows several-fold: they get a generous bound of their own
# unless they set one. A bound is a guard against hangs, never a speed check.
SLOW_TIMEOUT_S = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for s in _servers.values():
        s.stop()
    _servers.clear()


class StartedClouds(MockClouds):
    """A MockClouds view over the session's servers (started lazily, shared by every test)."""

    def __init__(self, clouds: tuple[str, ...]) -> None:
        super().__init__(clouds=clouds)
        self.servers = {c: _server(c) for c in clouds}

    def stop(self) -> None:  # the session owns the servers
        pass


@pytest.fixture
def mock_aws() -> StartedClouds:
    mc = StartedClouds(("aws",))
    mc.reset()
    return mc


@pytest.fixture
def mock_gcp() -> StartedClouds:
    mc = StartedClouds(("gcp",))
    mc.reset()
    return mc


@pytest.fixture
def mock_azure() -> StartedClouds:
    mc = StartedClouds(("azure",))
    mc.reset()
    return mc


@pytest.fixture
def mock_coreweave() -> StartedClouds:
    mc = StartedClouds(("coreweave",))
    mc.reset()
    return mc


@pytest.fixture
def mock_oci() -> StartedClouds:
    mc = StartedClouds(("oci",))
    mc.reset()
    return mc


@pytest.fixture
def mockclouds() -> StartedClouds:
    """Every mock cloud, reset to its seeded capacity with no faults."""
    mc = StartedClouds(CLOUDS)
    mc.reset()
    return mc


@pytest.fixture
def mock_config(mockclouds: StartedClouds) -> AwanConfig:
    return mockclouds.config()


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("AWAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return url
