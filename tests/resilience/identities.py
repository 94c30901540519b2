"""Each replica calls the mock clouds under its own name, so the mocks' request logs can tell the replicas
apart (mockclouds/requestlog.py): an application id in the User-Agent where the SDK has a setting for it
(AWS, Azure, OCI: environment variables), a credential of its own where it has none (a GCP service
account, a named Kubernetes token for CoreWeave). The SDKs are used unmodified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mockclouds.launcher import GCP_PROJECT, MockClouds
from mockclouds.oci.keys import throwaway_key
from mockclouds.requestlog import named_token

# The clouds the request logs cover, and the operations there that change a stack's resources.
WRITES: dict[str, tuple[str, ...]] = {
    "aws": ("Run", "Create", "Terminate", "Delete", "Modify", "Allocate", "Associate", "Purchase"),
    "gcp": ("instances.insert", "instances.delete", "resourcePolicies.insert", "resourcePolicies.delete",
            "futureReservations.insert", "futureReservations.delete", "nodes.create", "nodes.delete",
            "queuedResources.create", "queuedResources.delete"),
    "azure": ("VirtualMachines_CreateOrUpdate", "VirtualMachines_Delete", "VirtualMachineScaleSets_CreateOrUpdate",
              "VirtualMachineScaleSets_Delete"),
    "oci": ("Launch", "Terminate", "Create", "Delete", "Update"),
    "coreweave": ("create nodepools", "update nodepools", "patch nodepools", "delete nodepools"),
}


def env(replica: str) -> dict[str, str]:
    """The environment naming ``replica`` in the User-Agent of the SDKs that read one."""
    app = f"app/{replica}"
    return {"AWS_SDK_UA_APP_ID": replica, "AZURE_HTTP_USER_AGENT": app, "OCI_SDK_APPEND_USER_AGENT": app}


def _gcp_service_account(token_uri: str, replica: str) -> str:
    pem, _fingerprint = throwaway_key()
    return json.dumps({"type": "service_account", "project_id": GCP_PROJECT, "private_key_id": replica,
                       "private_key": pem, "client_email": f"{replica}@{GCP_PROJECT}.iam.gserviceaccount.com",
                       "client_id": replica, "token_uri": token_uri})


def config_dict(clouds: MockClouds, replica: str) -> dict[str, Any]:
    cfg = clouds.config_dict()
    provs = cfg["providers"]
    if "gcp" in provs:
        provs["gcp"]["credentials"] = {"service_account_json": _gcp_service_account(
            f"{clouds.urls['gcp']}/token", replica)}
    if "coreweave" in provs:
        creds = provs["coreweave"]["credentials"]
        creds["token"] = named_token(creds["token"], replica)
    return cfg


def write_config(clouds: MockClouds, path: Path, replica: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_dict(clouds, replica), sort_keys=False))
    return path
