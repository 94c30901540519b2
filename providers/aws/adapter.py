"""The AWS adapter: EC2 (and Service Quotas) through boto3, against real AWS or the AWS mock.

    provider = AWSProvider(cfg)            # cfg: ProviderConfig; endpoint None = real AWS
    provider.offerings()                   # the catalog refreshed from EC2 (the CLI merges it)
    provider.capacity()                    # reservations, capacity blocks, quota-bounded pools, quotas
    provider.create_nodes(NodeRequest(...))

Beyond the Provider interface (``AwsReservations``): ensure_placement_group / delete_placement_group,
create_capacity_reservation / cancel_capacity_reservation, describe_capacity_block_offerings /
purchase_capacity_block. Every failure is a typed ProviderError naming provider, endpoint, region, code.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from providers import fanout
from providers.aws import capacity as cap
from providers.aws.clients import AwsClients
from providers.aws.compute import LIVE_STATES, run_params, to_node
from providers.aws.reservations import AwsReservations
from providers.base import Provider
from providers.capabilities import CapacityBlockOffer
from providers.catalog import CapacityType, Catalog, Offering, default_catalog
from providers.config import ProviderConfig
from providers.errors import InvalidRequestError, NotFoundError, ProviderError, UnavailableError
from providers.health import region_status, roll_up
from providers.model import (
    TAG_OWNER,
    CapacityPool,
    CapacityReport,
    HealthStatus,
    Node,
    NodeRequest,
    NodeState,
    ProviderHealth,
    Quota,
)
from providers.retry import BACKOFF_BASE_S

# AMI looked up when none is configured: the GPU base DLAMI on real AWS, any DLAMI on moto.
IMAGE_NAME_PATTERNS = ("Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)*", "Deep Learning*Ubuntu*")
SLOW_REGION_MS = 2000.0

__all__ = ["AWSProvider", "CapacityBlockOffer"]


log = structlog.get_logger(__name__)

class AWSProvider(AwsReservations, Provider):
    name = "aws"

    def __init__(self, cfg: ProviderConfig, *, catalog: Catalog | None = None, owner: str = "awan",
                 image_ids: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
                 backoff_base: float = BACKOFF_BASE_S) -> None:
        """``owner``: value of the awan:owner tag that marks our instances. ``image_ids``: AMI per region
        (else looked up by name). ``sleep``/``backoff_base``: the retry clock, injectable for tests."""
        self.cfg = cfg
        self.endpoint = cfg.where
        self.catalog = catalog or default_catalog()
        self.owner = owner
        self.clients = AwsClients(cfg, sleep=sleep, backoff_base=backoff_base)
        self._images = dict(image_ids or {})
        catalog_regions = sorted({o.region for o in self.catalog.for_provider("aws")})
        self.regions = list(cfg.regions or catalog_regions)

    def _region_of(self, zone: str) -> str:
        return self.catalog.zones("aws").get(zone) or zone[:-1]

    # -- questions -----------------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        return [o for r in self.regions for o in cap.region_offerings(self.clients, self.catalog, r)]

    def capacity(self) -> CapacityReport:
        """A region that does not answer is left out (health() reports it), as on GCP; if none answers the
        error is raised. Its quota usage is read from DescribeInstances, so one region whose instance
        listing fails no longer takes every other region's capacity out of placement with it. The regions
        are asked at once (fanout.each): their round trips overlap instead of adding up."""
        types = sorted({n for (p, n) in self.catalog.instance_types if p == "aws"})

        def region_read(region: str) -> tuple[list[Quota], list[CapacityPool]]:
            # a region's reads at once too: a region takes its slowest read, not the sum of its 5-6 round trips
            qs, live, reserved = fanout.all_of(lambda: cap.quotas(self.clients, self.catalog, region),
                                               lambda: cap.offered_zones(self.clients, region, types),
                                               lambda: cap.reservation_pools(self.clients, region))
            return qs, reserved + cap.free_pools(self.catalog, region, live, qs)

        pools: list[CapacityPool] = []
        quotas: list[Quota] = []
        last_error: UnavailableError | None = None
        for region, got in zip(self.regions, fanout.each(self.regions, region_read), strict=True):
            if isinstance(got, UnavailableError):
                log.warning("aws.capacity.region_unavailable", region=region, error=str(got))
                last_error = got
                continue
            if isinstance(got, Exception):
                raise got
            quotas += got[0]
            pools += got[1]
        if last_error is not None and not quotas and not pools:
            raise last_error
        return CapacityReport("aws", tuple(pools), tuple(quotas), datetime.now(UTC))

    def list_nodes(self) -> list[Node]:
        return [n for region in self.regions for n in self.list_nodes_in(region)]

    def configured_regions(self) -> list[str]:
        return list(self.cfg.regions or [])

    def list_nodes_in(self, region: str) -> list[Node]:
        """SupportsRegionalListing: a stack (one region) asks one region, not every one."""
        res = self.clients.pages("ec2", region, "describe_instances", "Reservations",
                                 Filters=[{"Name": f"tag:{TAG_OWNER}", "Values": [self.owner]},
                                          {"Name": "instance-state-name", "Values": list(LIVE_STATES)}])
        return [to_node(i, region, self.catalog) for r in res for i in r["Instances"]]

    def health(self) -> ProviderHealth:
        def probe(region: str) -> tuple[float, list[str]]:
            # Building the region's client is not the region's latency. Builds take turns under the clients'
            # lock, so a probe timed from here would wait for the other regions' builds as well (16 regions on
            # a loaded machine: 1.4 s reported for 0.3 s answers, bench health), and past SLOW_REGION_MS a
            # healthy region reads DEGRADED. A client that cannot be built fails the call below, typed.
            with contextlib.suppress(Exception):
                self.clients.client("ec2", region)
            t0 = time.perf_counter()
            zones = self.clients.call("ec2", region, "describe_availability_zones", attempts=1)
            return ((time.perf_counter() - t0) * 1000,
                    [z["ZoneName"] for z in zones["AvailabilityZones"] if z.get("State") != "available"])

        states: dict[str, HealthStatus] = {}
        messages, latencies = [], []
        for region, got in zip(self.regions, fanout.each(self.regions, probe), strict=True):
            if isinstance(got, ProviderError):
                states[region] = region_status(got)
                messages.append(f"{region}: {got.message} [{got.code}]")
                continue
            if isinstance(got, Exception):
                raise got
            ms, impaired = got
            latencies.append(ms)
            states[region] = HealthStatus.DEGRADED if impaired or ms > SLOW_REGION_MS else HealthStatus.OK
            if impaired:
                messages.append(f"{region}: zones not available: {', '.join(impaired)}")
        return roll_up("aws", self.endpoint, states, max(latencies, default=0.0), messages)

    # -- side effects --------------------------------------------------------------------------
    def image_id(self, region: str) -> str:
        if region not in self._images:
            for pattern in IMAGE_NAME_PATTERNS:
                imgs = self.clients.call("ec2", region, "describe_images", Owners=["amazon"],
                                         Filters=[{"Name": "name", "Values": [pattern]},
                                                  {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
                if imgs:
                    self._images[region] = max(imgs, key=lambda i: i.get("CreationDate", ""))["ImageId"]
                    break
            else:
                raise InvalidRequestError("no GPU machine image found; set image_ids for this region",
                                          provider="aws", endpoint=self.endpoint, region=region)
        return self._images[region]

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        region = request.region or self._region_of(request.zone)
        block = (request.capacity_type == CapacityType.RESERVED and bool(request.reservation_id)
                 and self._is_capacity_block(region, request.reservation_id))
        params = run_params(request, owner=self.owner, image_id=self.image_id(region), block=block)
        out = self.clients.call("ec2", region, "run_instances", **params)
        return [to_node(i, region, self.catalog) for i in out["Instances"]]

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        by_region: dict[str, list[str]] = {}
        for n in nodes:
            if n.state not in (NodeState.TERMINATED, NodeState.PREEMPTED):
                by_region.setdefault(n.region or self._region_of(n.zone), []).append(n.id)
        for region, ids in by_region.items():
            try:
                self.clients.call("ec2", region, "terminate_instances", InstanceIds=ids)
            except NotFoundError:
                # EC2 refuses the whole batch if one id is unknown: delete the rest one by one.
                for iid in ids:
                    with contextlib.suppress(NotFoundError):
                        self.clients.call("ec2", region, "terminate_instances", InstanceIds=[iid])

    def close(self) -> None:
        self.clients.close()
