from __future__ import annotations

import time

from providers.catalog import PROVIDERS, CapacityType, default_catalog, load_catalog


def test_every_provider_and_the_gpus_a_lab_places_on_are_in_the_catalog() -> None:
    cat = load_catalog()
    models = {(it.provider, it.gpu_model) for it in cat.instance_types.values()}
    for need in [("aws", "H100"), ("aws", "H200"), ("aws", "B200"), ("aws", "B300"), ("aws", "GB200"),
                 ("gcp", "H100"), ("gcp", "H200"), ("gcp", "B200"), ("gcp", "TPU-v5p"), ("gcp", "TPU-v6e"),
                 ("azure", "H100"), ("azure", "H200"), ("azure", "GB200"), ("azure", "MI300X"),
                 ("coreweave", "H100"), ("coreweave", "H200"), ("coreweave", "B200"), ("coreweave", "GB200"),
                 ("coreweave", "GB300")]:
        assert need in models, need
    assert {o.provider for o in cat.offerings} == set(PROVIDERS)


def test_nvlink_domains_match_the_hardware() -> None:
    cat = default_catalog()
    assert cat.instance_type("aws", "p5.48xlarge").nvlink_domain_gpus == 8
    gb = cat.instance_type("aws", "p6e-gb200.36xlarge")
    assert (gb.gpus, gb.nvlink_domain_gpus, gb.nodes_per_domain, gb.ultraserver) == (4, 72, 18, "u-p6e-gb200x72")
    assert cat.instance_type("coreweave", "gb300-4x").nodes_per_domain == 18
    assert cat.instance_type("azure", "Standard_ND96isr_H100_v5").fabric == "infiniband"


def test_every_offering_has_a_price_a_known_region_and_a_source() -> None:
    cat = default_catalog()
    for o in cat.offerings:
        assert o.price_per_hour > 0, o
        assert (o.provider, o.instance_type) in cat.instance_types, o
        assert (o.provider, o.region) in cat.regions, o
        assert o.source, o


def test_ultraservers_are_sold_only_as_capacity_blocks() -> None:
    rows = [o for o in default_catalog().offerings if o.instance_type == "p6e-gb200.36xlarge"]
    assert rows and {o.capacity_type for o in rows} == {CapacityType.RESERVED}


def test_regions_know_geography_and_country() -> None:
    cat = default_catalog()
    assert cat.region("gcp", "europe-west4").geo == "eu" and cat.region("gcp", "europe-west4").country == "NL"
    assert cat.region("aws", "eu-west-2").geo == "uk"
    assert cat.region("coreweave", "US-EAST-04").geo == "us"
    assert cat.region("azure", "switzerlandnorth").geo == "ch"


def test_loading_is_fast() -> None:
    # Not a timing assertion on the product: a sanity bound that catches an accidental O(n^2) loader (a load
    # takes ~8 ms of CPU). This thread's CPU only: the process's counts every thread of the xdist worker, which
    # also serves the session's mock clouds (one run on a loaded machine read 0.72 s a load that way).
    t0 = time.thread_time()
    for _ in range(5):
        load_catalog()
    assert (time.thread_time() - t0) / 5 < 0.5


def test_replace_provider_swaps_only_that_provider() -> None:
    cat = default_catalog()
    live = [o for o in cat.for_provider("aws") if o.zone == "us-east-1a"]
    new = cat.replace_provider("aws", live)
    assert new.for_provider("aws") == live
    assert new.for_provider("gcp") == cat.for_provider("gcp")
