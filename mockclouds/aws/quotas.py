"""Service Quotas (JSON 1.1 protocol, ``X-Amz-Target: ServiceQuotasV20190624.<Op>``) for ServiceCode
``ec2``: the vCPU quotas the mock enforces on RunInstances. Other service codes go on to moto.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from mockclouds.aws.models import QUOTA_SPOT_P
from mockclouds.aws.render import ACCOUNT_ID
from mockclouds.aws.state import AwsState
from mockclouds.aws.wire import json_error, json_response

TARGET_PREFIX = "ServiceQuotasV20190624."


def _quota(region: str, code: str, name: str, value: float) -> dict[str, Any]:
    return {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:aws:servicequotas:{region}:{ACCOUNT_ID}:ec2/{code}", "QuotaCode": code,
            "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
            "UsageMetric": {"MetricNamespace": "AWS/Usage", "MetricName": "ResourceCount",
                            "MetricDimensions": {"Class": "P/Spot" if code == QUOTA_SPOT_P else "P/OnDemand",
                                                 "Resource": "vCPU", "Service": "EC2", "Type": "Resource"},
                            "MetricStatisticRecommendation": "Maximum"}}


def handle(state: AwsState, region: str, op: str, body: dict[str, Any]) -> Response | None:
    """Answer an ec2 quota call, or None to let moto serve it."""
    if body.get("ServiceCode") != "ec2" or op not in ("GetServiceQuota", "ListServiceQuotas",
                                                      "GetAWSDefaultServiceQuota"):
        return None
    with state.lock:
        quotas = [_quota(region, code, name, limit) for code, name, limit in state.quotas(region)]
    if op == "ListServiceQuotas":
        want = body.get("QuotaCode")
        return json_response({"Quotas": [q for q in quotas if not want or q["QuotaCode"] == want]})
    for q in quotas:
        if q["QuotaCode"] == body.get("QuotaCode"):
            return json_response({"Quota": q})
    return json_error("NoSuchResourceException",
                      f"The request failed because the specified quota {body.get('QuotaCode')!r} doesn't exist.")
