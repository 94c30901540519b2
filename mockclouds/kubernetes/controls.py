"""Test controls of the fake clusters, beside the shared ``/_mock/*`` ones (mockclouds.control)::

    GET  /_mock/clusters     -> {"clusters": [{name, provider, region, server, token}]}
    POST /_mock/pods/finish  {"region"?, "namespace"?, "name"?, "labelSelector"?, "exitCode"?: 0}
                             -> {"pods": [names]}: the matching running pods' containers exit now
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from mockclouds.kubernetes.cluster import Cluster
from mockclouds.kubernetes.errors import ApiError
from mockclouds.kubernetes.selectors import labels_match, parse_label_selector


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def finish_request(body: dict[str, Any], cluster: Cluster) -> Response:
    """``POST /_mock/pods/finish``: end running pods now (a test's way to decide when a job ends)."""
    code = body.get("exitCode", 0)
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
        return json_response({"error": "exitCode: an integer in 0..255 is required"}, 400)
    try:
        reqs = parse_label_selector(body.get("labelSelector"))
    except ApiError as e:
        return json_response({"error": f"labelSelector: {e.message}"}, 400)
    ns = body.get("namespace") or None
    name = body.get("name")
    done = cluster.finish_pods(ns, lambda o: labels_match(reqs, o["metadata"].get("labels"))
                               and (not name or o["metadata"]["name"] == name), code)
    return json_response({"pods": done})
