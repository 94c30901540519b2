"""The Pulumi engine: the Automation API with inline programs, used wherever the pulumi CLI is installed.

Stacks live in a ``file://`` backend under ``~/.awan/pulumi`` by default (``AWAN_PULUMI_BACKEND`` for
any other backend URL). Stack config comes from the StackSpec (provider region/project/location, and
the whole spec as ``awan:stack`` so ``pulumi up`` by hand in infra/ builds the same program).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.engines.base import (
    ChangeSet,
    DriftItem,
    DriftReport,
    EngineError,
    EngineUnavailable,
    ResourceChange,
    UpResult,
)
from infra.engines.pulumi_errors import map_pulumi_error
from infra.programs import program_for
from infra.spec import StackSpec, parse_stack_name

PROJECT = "awan-infra"
BACKEND_ENV = "AWAN_PULUMI_BACKEND"
# A file backend encrypts secrets with a passphrase; an empty one is Pulumi's documented choice for
# local, unshared state. Set PULUMI_CONFIG_PASSPHRASE(_FILE) to use your own.
_DEFAULT_PASSPHRASE = ""
_OPS = {"create": "creates", "update": "updates", "replace": "updates", "create-replacement": "updates",
        "delete": "deletes", "delete-replaced": "deletes", "same": "sames"}


def pulumi_cli() -> str | None:
    return shutil.which("pulumi")


def default_backend() -> str:
    return os.environ.get(BACKEND_ENV) or (Path.home() / ".awan" / "pulumi").as_uri()


def stack_config(stack: StackSpec) -> dict[str, str]:
    """Pulumi config for ``stack``: the provider's own keys plus ``awan:stack``."""
    cfg: dict[str, str] = {"awan:stack": stack.to_json()}
    if stack.provider == "aws":
        cfg["aws:region"] = stack.region
    elif stack.provider == "gcp":
        cfg["gcp:region"] = stack.region
        if stack.config.get("project"):
            cfg["gcp:project"] = stack.config["project"]
    elif stack.provider == "azure":
        cfg["azure-native:location"] = stack.region
        if stack.config.get("subscription"):
            cfg["azure-native:subscriptionId"] = stack.config["subscription"]
    elif stack.provider == "oci":
        cfg["oci:region"] = stack.region
    elif stack.provider == "coreweave" and stack.config.get("kubeconfig"):
        cfg["kubernetes:kubeconfig"] = stack.config["kubeconfig"]
    return cfg


class PulumiEngine:
    name = "pulumi"

    def __init__(self, backend: str | None = None, on_output: Callable[[str], None] | None = None,
                 work_dir: str | None = None) -> None:
        if pulumi_cli() is None:
            raise EngineUnavailable("pulumi CLI not found on PATH; use the local engine")
        self.backend = backend or default_backend()
        self._emit = on_output or (lambda _line: None)
        self.work_dir = work_dir
        if self.backend.startswith("file://"):
            Path(self.backend[len("file://"):]).mkdir(parents=True, exist_ok=True)

    # -- workspace -----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {"PULUMI_BACKEND_URL": self.backend}
        if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
            env["PULUMI_CONFIG_PASSPHRASE"] = _DEFAULT_PASSPHRASE
        return env

    def _workspace_opts(self) -> Any:
        from pulumi import automation as auto

        return auto.LocalWorkspaceOptions(
            work_dir=self.work_dir, env_vars=self._env(),
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python",
                                                  backend=auto.ProjectBackend(url=self.backend)))

    def _stack(self, stack: StackSpec) -> Any:
        from pulumi import automation as auto

        s = auto.create_or_select_stack(stack_name=stack.name, project_name=PROJECT,
                                        program=program_for(stack), opts=self._workspace_opts())
        s.set_all_config({k: auto.ConfigValue(value=v) for k, v in stack_config(stack).items()})
        return s

    def _select(self, stack_name: str) -> Any:
        from pulumi import automation as auto

        provider, region = parse_stack_name(stack_name)
        return auto.select_stack(stack_name=stack_name, project_name=PROJECT,
                                 program=program_for(StackSpec(provider, region)), opts=self._workspace_opts())

    # -- the Engine interface ------------------------------------------------------------------
    def preview(self, stack: StackSpec) -> ChangeSet:
        cs = ChangeSet()
        self._stack(stack).preview(on_output=self._emit, on_event=_collect(cs))
        return cs

    def up(self, stack: StackSpec) -> UpResult:
        t0 = time.monotonic()
        cs = ChangeSet()
        _check_credentials(stack)
        try:
            res = self._stack(stack).up(on_output=self._emit, on_event=_collect(cs))
        except Exception as e:          # auto.CommandError: the cloud's answer is in its text
            typed = map_pulumi_error(str(e), provider=stack.provider, region=stack.region)
            if typed is None:
                raise
            raise typed from e
        return UpResult(stack.name, cs, {k: v.value for k, v in res.outputs.items()}, time.monotonic() - t0,
                        [res.summary.message or ""])

    def destroy(self, stack_name: str) -> UpResult:
        t0 = time.monotonic()
        cs = ChangeSet()
        try:
            s = self._select(stack_name)
        except Exception as e:  # StackNotFoundError and friends from the CLI
            raise EngineError(f"stack {stack_name}: {e}") from None
        s.destroy(on_output=self._emit, on_event=_collect(cs))
        return UpResult(stack_name, cs, {}, time.monotonic() - t0)

    def refresh(self, stack: StackSpec) -> DriftReport:
        # preview_refresh: what a refresh would change, without writing it (drift is a report).
        cs = ChangeSet()
        self._stack(stack).preview_refresh(on_output=self._emit, on_event=_collect(cs))
        rep = DriftReport(stack.name)
        rep.missing = [DriftItem(c.urn, c.type, "missing") for c in cs.deletes]
        rep.changed = [DriftItem(c.urn, c.type, "changed", c.detail) for c in cs.updates]
        return rep

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return {k: v.value for k, v in self._select(stack_name).outputs().items()}

    def list_stacks(self) -> list[str]:
        from pulumi import automation as auto

        ws = auto.LocalWorkspace(work_dir=self.work_dir, env_vars=self._env(),
                                 project_settings=self._workspace_opts().project_settings)
        return sorted(s.name for s in ws.list_stacks())


def _check_credentials(stack: StackSpec) -> None:
    """Azure Linux VMs need a login credential when passwords are off (ARM refuses the scale set
    otherwise), and Awan's policy is SSH keys only: say so before Pulumi runs, naming the setting."""
    if stack.provider == "azure" and stack.pools and not stack.config.get("ssh_public_key"):
        raise EngineError(f"stack {stack.name}: providers.azure.credentials.ssh_public_key: required by the "
                          "Pulumi engine (Azure GPU nodes take SSH keys only; password login is disabled)")


def _collect(cs: ChangeSet) -> Callable[[Any], None]:
    """An on_event callback sorting resource events into the change set (as Pulumi counts them)."""

    def on_event(event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        meta = getattr(pre, "metadata", None) if pre is not None else None
        if meta is None or meta.type == "pulumi:pulumi:Stack":
            return
        op = str(getattr(meta.op, "value", meta.op))
        bucket = _OPS.get(op)
        if bucket is not None:
            name = meta.urn.rsplit("::", 1)[-1]
            getattr(cs, bucket).append(ResourceChange(meta.urn, meta.type, name, op,
                                                      ", ".join(meta.diffs or [])))

    return on_event
