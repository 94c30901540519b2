"""One /metrics for a service of several processes: the API's own registry and the expositions of its
other processes (the controller process, controlplane/reconcile/child.py), merged into one text.

A family both processes export (the loop's counters are defined in both; the API's stay at zero when the
loop runs in its own process) is one family: counters, histograms and summaries are summed sample by sample
(``_created``: the earliest), a gauge keeps the API's value when both have it. The other process's
``process_*`` families (its CPU, memory, open files) are renamed ``awan_controller_process_*`` so they are
not mistaken for the API process's; its ``python_info`` is the API's.

With several API worker processes (``awan serve --workers N``, controlplane/api/workers.py) the other
workers' expositions are *peers*: the same families as the answering worker's, counters and histograms summed
(requests, submits, ``process_cpu_seconds_total``: the API's CPU across its workers), a gauge (in-flight
requests, memory, the store's gauges) the answering worker's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

_SUMMED = ("counter", "histogram", "summary")
OTHER_PREFIX = "awan_controller_"


def _key(s: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return s.name, tuple(sorted(s.labels.items()))


def _renamed(f: Metric) -> Metric | None:
    if f.name == "python_info":
        return None
    if not f.name.startswith("process_"):
        return f
    out = Metric(OTHER_PREFIX + f.name, f.documentation, f.type, f.unit)
    out.samples = [s._replace(name=OTHER_PREFIX + s.name) for s in f.samples]
    return out


class _Merged(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def merge(own: bytes, others: Iterable[bytes], peers: Iterable[bytes] = ()) -> bytes:
    """``own``: the API process's exposition; ``others``: the other processes' (the controller's);
    ``peers``: the other API workers' (text format 0.0.4)."""
    families: dict[str, Metric] = {}
    samples: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Sample]] = {}
    texts = [(own, False), *((t, False) for t in peers), *((t, True) for t in others)]
    for text, other in texts:
        for f in text_string_to_metric_families(text.decode()):
            fam = _renamed(f) if other else f
            if fam is None:
                continue
            have = families.setdefault(fam.name, fam)
            got = samples.setdefault(fam.name, {})
            for s in fam.samples:
                k = _key(s)
                old = got.get(k)
                if old is None:
                    got[k] = s
                elif have.type in _SUMMED:
                    value = min(old.value, s.value) if s.name.endswith("_created") else old.value + s.value
                    got[k] = old._replace(value=value)
    for name, fam in families.items():
        fam.samples = list(samples[name].values())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(families.values()))
    return generate_latest(registry)
