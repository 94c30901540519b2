"""The input of the end-to-end plan benchmark: ``n`` mixed workloads as one multi-document YAML manifest,
the request mix of the placement bench's stream (bench/placement/stream.py: 1-GPU inference, 8-GPU nodes,
NVL72 and 1,024-GPU gangs, several teams, residency labels), written the way a person would write them.
The same ``n`` and seed give the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.placement.stream import workload_stream


def manifest_docs(n: int, seed: int = 20261130) -> list[dict[str, Any]]:
    """``n`` GPUWorkload documents (apiVersion/kind, metadata, spec with only what was asked)."""
    docs = []
    for item in workload_stream(n, seed=seed):
        w = item.workload
        doc = w.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        docs.append({"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload", **doc})
    return docs


def write_manifest(path: Path, n: int, seed: int = 20261130) -> Path:
    # libyaml's emitter where PyYAML has it: the pure-Python one took minutes for 100,000 documents
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump_all(manifest_docs(n, seed), Dumper=dumper, sort_keys=False, explicit_start=True)
    path.write_text(text)
    return path
