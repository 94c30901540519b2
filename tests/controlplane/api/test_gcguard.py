"""The full-collection guard of large submits: generation 2 deferred while any is inside, the thresholds
as they were once the last leaves, the deferral bounded in time, and a threshold someone else raised left
alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from controlplane.api import gcguard
from controlplane.api.gcguard import FullCollectionGuard


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_full_collections_deferred_inside_and_restored_after_the_last(thresholds: tuple[int, int, int]) -> None:
    g = FullCollectionGuard()
    with g.deferred():
        assert gc.get_threshold()[:2] == thresholds[:2]         # young generations collected as before
        assert gc.get_threshold()[2] > 1000 and g.deferring
        with g.deferred():
            pass
        assert g.deferring                                      # one still inside
    assert gc.get_threshold() == thresholds and not g.deferring


def test_an_error_inside_still_restores(thresholds: tuple[int, int, int]) -> None:
    g = FullCollectionGuard()
    with pytest.raises(ValueError), g.deferred():
        raise ValueError("bad manifest")
    assert gc.get_threshold() == thresholds


def test_overlapping_submits_cannot_defer_past_the_bound(thresholds: tuple[int, int, int]) -> None:
    now = [0.0]
    g = FullCollectionGuard(max_defer_s=10.0, clock=lambda: now[0])
    with g.deferred():
        now[0] = 11.0
        with g.deferred():                                      # arrives after the bound: collections allowed
            assert gc.get_threshold() == thresholds and not g.deferring
    assert gc.get_threshold() == thresholds
    with g.deferred():                                          # a fresh start defers again
        assert g.deferring


def test_a_threshold_raised_by_someone_else_is_left_to_them() -> None:
    gc.set_threshold(700, 10, 5_000_000)
    g = FullCollectionGuard()
    with g.deferred():
        assert gc.get_threshold() == (700, 10, 5_000_000)
    assert gc.get_threshold() == (700, 10, 5_000_000)


def test_only_large_bodies_are_guarded() -> None:
    with gcguard.while_large(100):
        assert not gcguard.guard.deferring
    with gcguard.while_large(gcguard.LARGE_SUBMIT_CHARS):
        assert gcguard.guard.deferring
    assert not gcguard.guard.deferring
