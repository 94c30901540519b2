"""spec.template and spec.run: strict, every error names its field, a manifest without a template is a
capacity reservation stored exactly as before templates existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.model import ManifestError, parse_manifests

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BASE = "metadata: {name: x}\nspec:\n  kind: KIND\n  gpus: {model: H100, count: 16, perNode: 8}\n"


def doc(body: str, kind: str = "training") -> str:
    return BASE.replace("KIND", kind) + "".join(f"  {line}\n" for line in body.strip().splitlines())


def test_a_full_template_parses_with_kubernetes_names():
    [w] = parse_manifests(doc("""
template:
  image: ghcr.io/org/train:1.2@sha256:abc
  command: [torchrun]
  args: [train.py]
  env: [{name: NCCL_DEBUG, value: INFO}, {name: TOKEN, valueFrom: {secretKeyRef: {name: hf, key: token}}}]
  envFrom: [{secretRef: {name: wandb}, prefix: WB_}]
  workingDir: /workspace
  shmSize: 64Gi
run: {restartPolicy: OnFailure, maxRetries: 5, activeDeadlineSeconds: 3600, checkpoint: {uri: "s3://b/c", env: CKPT}}
"""))
    t, r = w.spec.template, w.spec.run
    assert t is not None and t.env[1].value_from is not None
    assert (t.env[1].value_from.secret_key_ref.name, t.env_from[0].secret_ref.name) == ("hf", "wandb")
    assert (r.max_retries, r.active_deadline_seconds, r.checkpoint and r.checkpoint.env) == (5, 3600, "CKPT")
    m = w.to_manifest()["spec"]
    assert m["template"]["shmSize"] == "64Gi" and m["run"]["restartPolicy"] == "OnFailure"
    assert parse_manifests(json.dumps(w.to_manifest()))[0] == w   # what is stored reads back the same


def test_without_a_template_it_is_a_reservation_stored_as_before():
    [w] = parse_manifests(doc(""))
    assert w.spec.template is None and not w.spec.runs_something
    assert "template" not in w.to_manifest()["spec"] and "run" not in w.to_manifest()["spec"]


@pytest.mark.parametrize("body, kind, field", [
    ("template: {command: [python]}", "training", "spec.template.image: required field is missing"),
    ("template: {image: ''}", "training", "spec.template.image"),
    ("template: {image: 'bad image'}", "training", "spec.template.image"),
    ("template: {image: a, env: [{name: 1BAD, value: x}]}", "training", "spec.template.env[0].name"),
    ("template: {image: a, env: [{name: 'A=B', value: x}]}", "training", "spec.template.env[0].name"),
    ("template: {image: a, env: [{name: A, value: x}, {name: A, value: y}]}", "training", "spec.template.env"),
    ("template: {image: a, env: [{name: RANK, value: '3'}]}", "training", "set by Awan"),
    ("template: {image: a, env: [{name: A, value: x, valueFrom: {secretKeyRef: {name: s, key: k}}}]}",
     "training", "spec.template.env[0]"),
    ("template: {image: a, envFrom: [{secretRef: {name: Not_A_Secret}}]}", "training",
     "spec.template.envFrom[0].secretRef.name"),
    ("template: {image: a, workingDir: relative}", "training", "spec.template.workingDir"),
    ("template: {image: a, shmSize: lots}", "training", "spec.template.shmSize"),
    ("template: {image: a, ports: [{containerPort: 0}]}", "training", "spec.template.ports[0].containerPort"),
    ("template: {image: a, ports: [{containerPort: 70000}]}", "training", "spec.template.ports[0].containerPort"),
    ("template: {image: a, ports: [{containerPort: 80, name: Web_Port}]}", "training",
     "spec.template.ports[0].name"),
    ("template: {image: a, colour: blue}", "training", "spec.template.colour: unknown field"),
    ("template: {image: a}\nrun: {activeDeadlineSeconds: -5}", "training", "spec.run.activeDeadlineSeconds"),
    ("template: {image: a}\nrun: {maxRetries: -1}", "training", "spec.run.maxRetries"),
    ("template: {image: a}\nrun: {restartPolicy: Sometimes}", "training", "spec.run.restartPolicy"),
    ("template: {image: a}\nrun: {checkpoint: {uri: ''}}", "training", "spec.run.checkpoint.uri"),
    ("template: {image: a}\nrun: {checkpoint: {uri: s3://x, env: '9X'}}", "training", "spec.run.checkpoint.env"),
    ("template: {image: a}\nrun: {servicePort: 80}", "training", "run.servicePort: only for kind: inference"),
    ("template: {image: a, ports: [{containerPort: 80}]}\nrun: {servicePort: 99999}", "inference",
     "spec.run.servicePort"),
    ("template: {image: a}", "inference", "template.ports: an inference service needs a containerPort"),
    ("template: {image: a, ports: [{containerPort: 80}]}\nrun: {readinessProbe: {httpGet: {port: 80}, "
     "tcpSocket: {port: 80}}}", "inference", "spec.run.readinessProbe"),
    ("run: {maxRetries: 2}", "training", "run: needs spec.template"),
])
def test_bad_templates_name_the_field(body, kind, field):
    with pytest.raises(ManifestError) as e:
        parse_manifests(doc(body, kind), "job.yaml")
    assert field in str(e.value), str(e.value)


def test_examples_parse_and_the_jobs_run_something():
    for p in sorted(EXAMPLES.rglob("*.yaml")):
        if p.parent.name == "simulate":      # what-if scenarios for `awan simulate`, not manifests
            continue
        ws = parse_manifests(p.read_text(), str(p))
        assert all(w.spec.runs_something == (p.parent.name == "jobs") for w in ws), p
    kinds = {w.spec.kind.value for p in (EXAMPLES / "jobs").glob("*.yaml") for w in parse_manifests(p.read_text())}
    assert kinds == {"training", "inference", "batch"}


def test_a_stored_run_spec_validates_again():
    # The loop re-validates the spec it stored (a dump of the model, every field named, unset ones null):
    # an inference service's activeDeadlineSeconds: null is "not set", not a deadline.
    from controlplane.model.workload import GPUWorkload

    for p in sorted((EXAMPLES / "jobs").glob("*.yaml")):
        for w in parse_manifests(p.read_text(), str(p)):
            again = GPUWorkload.model_validate(w.to_manifest())
            assert again.spec.run == w.spec.run, p
