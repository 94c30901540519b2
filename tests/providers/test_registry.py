"""Registration checks each adapter against the capabilities it is registered with."""

from __future__ import annotations

import pytest

from providers.capabilities import SupportsCapacityBlocks, SupportsNodePools, SupportsReservations
from providers.registry import CAPABILITIES, RegistrationError, build_provider, check_capabilities
from tests.infra.fakes import BareFakeProvider, FakeProvider


def test_an_adapter_missing_a_registered_capability_is_refused_naming_it() -> None:
    with pytest.raises(RegistrationError, match="BareFakeProvider does not implement SupportsPlacementGroups, "
                       "SupportsReservations, SupportsCapacityBlocks"):
        check_capabilities("aws", BareFakeProvider("aws"), CAPABILITIES["aws"])
    check_capabilities("aws", FakeProvider("aws"), (SupportsReservations, SupportsCapacityBlocks))


def test_every_adapter_implements_what_it_is_registered_with(mock_config) -> None:
    for name in ("aws", "gcp", "azure", "coreweave", "oci"):
        p = build_provider(mock_config.providers[name])       # raises RegistrationError otherwise
        assert all(isinstance(p, c) for c in CAPABILITIES[name])
        p.close()
    assert not isinstance(build_provider(mock_config.providers["aws"]), SupportsNodePools)
