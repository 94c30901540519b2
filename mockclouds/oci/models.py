"""The fake OCI's resources and its error, as plain dataclasses (rendered to OCI's JSON in ``wire.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

AD_PREFIX = "Awan"      # availability domain names carry a tenancy-specific prefix: "Awan:US-ASHBURN-AD-1"


def ad_name(zone: str) -> str:
    return f"{AD_PREFIX}:{zone}"


def zone_of(ad: str) -> str:
    """The catalog's zone for an AD name, with or without its tenancy prefix."""
    return ad.rsplit(":", 1)[-1]


def now() -> datetime:
    return datetime.now(UTC)


class OciError(Exception):
    """An answer in OCI's error shape: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def not_found(what: str) -> OciError:
    return OciError(404, "NotAuthorizedOrNotFound",
                    f"Authorization failed or requested resource not found: {what}.")


@dataclass
class Instance:
    id: str
    region: str
    zone: str
    shape: str
    display_name: str
    compartment: str
    tags: dict[str, str]
    state: str = "RUNNING"            # PROVISIONING | RUNNING | TERMINATING | TERMINATED
    capacity_reservation_id: str = ""
    cluster_network_id: str = ""
    instance_configuration_id: str = ""
    preemptible: bool = False
    created: datetime = field(default_factory=now)
    holds_capacity: bool = True       # on the ledger (or in a reservation) until terminated


@dataclass
class CapacityReservation:
    id: str
    region: str
    zone: str
    shape: str
    reserved: int
    display_name: str
    compartment: str
    tags: dict[str, str]
    state: str = "ACTIVE"             # ACTIVE | DELETED
    created: datetime = field(default_factory=now)


@dataclass
class InstanceConfiguration:
    id: str
    region: str
    display_name: str
    compartment: str
    tags: dict[str, str]
    details: dict[str, object]        # instanceDetails as sent (instanceType "compute" + launchDetails)
    created: datetime = field(default_factory=now)

    @property
    def launch(self) -> dict[str, object]:
        launch = self.details.get("launchDetails")
        return launch if isinstance(launch, dict) else {}


@dataclass
class ClusterNetwork:
    id: str
    region: str
    zone: str
    display_name: str
    compartment: str
    tags: dict[str, str]
    pool_id: str
    pool_name: str
    instance_configuration_id: str
    size: int
    subnet_id: str = ""
    state: str = "RUNNING"            # PROVISIONING | RUNNING | SCALING | TERMINATED
    created: datetime = field(default_factory=now)
