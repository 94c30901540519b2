"""The deploy files: the Kustomize bases render (kubectl's built-in kustomize) into objects that validate
against the Kubernetes schemas (kubernetes-validate, strict: unknown fields fail), and say what the docs
promise; the Dockerfile parses with Docker's own parser and is slim, non-root, one process, health-checked.
There is no Docker engine on this machine, so the image itself is not built here (docs/deploy.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
K8S_VERSION = "1.30"   # the oldest minor we promise (docs/deploy.md)


def _render(path: str) -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed (make test-deps)")
    out = subprocess.run([KUBECTL, "kustomize", str(REPO / path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("path", ["deploy/kubernetes/base", "deploy/kubernetes/overlays/production"])
def test_manifests_render_and_validate_against_the_kubernetes_schemas(path: str) -> None:
    objs = _render(path)
    assert len(objs) >= 6
    for o in objs:
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)   # raises ValidationError naming the field


def test_production_runs_replicas_on_postgres_with_probes_secrets_and_tls() -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _render("deploy/kubernetes/overlays/production")}
    dep = objs[("Deployment", "awan")]
    assert dep["spec"]["replicas"] == 3 and dep["metadata"]["namespace"] == "awan"
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in c["env"]}
    assert env["AWAN_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "awan-db", "key": "url"}
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {"awan-clouds"}
    cm = objs[("ConfigMap", "awan")]["data"]
    assert cm["AWAN_HOST"] == "0.0.0.0" and cm["AWAN_CONFIG"].startswith("/etc/awan/config/")
    assert not any("password" in v.lower() or v.startswith("postgresql") for v in cm.values()), "secrets in a ConfigMap"
    ing = objs[("Ingress", "awan")]
    assert ing["spec"]["tls"][0]["secretName"] == "awan-tls"
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "awan"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert objs[("Service", "awan")]["spec"]["selector"] == selector
    assert objs[("PodDisruptionBudget", "awan")]["spec"]["selector"]["matchLabels"] == selector


def test_every_configmap_setting_is_a_real_setting() -> None:
    from controlplane.settings import Settings

    known = {f"AWAN_{k.upper()}" for k in Settings.model_fields}
    cm = next(o for o in _render("deploy/kubernetes/base") if o["kind"] == "ConfigMap")
    assert set(cm["data"]) <= known, set(cm["data"]) - known


def test_dockerfile_is_slim_non_root_one_process_and_health_checked() -> None:
    cmds = dockerfile.parse_file(str(REPO / "Dockerfile"))
    stages = [i for i, c in enumerate(cmds) if c.cmd == "FROM"]
    final = cmds[stages[-1]:]
    assert final[0].value[0].endswith("-slim"), final[0].original
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage must run as a non-root user"
    hc = [c for c in final if c.cmd == "HEALTHCHECK"]
    assert hc and "/healthz" in hc[0].original
    assert [c.value for c in final if c.cmd == "ENTRYPOINT"] == [("awan",)]
    assert [c.value for c in final if c.cmd == "CMD"] == [("serve",)]
    assert ("8080",) in [c.value for c in final if c.cmd == "EXPOSE"]
    env = " ".join(c.original for c in final if c.cmd == "ENV")
    assert "AWAN_HOST=0.0.0.0" in env
    for c in cmds:   # everything the build copies from the context exists
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags):
            for src in c.value[:-1]:
                assert (REPO / src).exists(), f"COPY {src}: not in the repository"
    policies = [p for p in env.split('"') if p.startswith("/etc/awan/policies/")]
    assert policies and all((REPO / "policies" / Path(p).name).exists() for p in policies)
