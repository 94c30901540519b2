"""Google's OAuth token endpoint, as much of it as a service-account credential needs: the client posts a
signed JWT (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``) and receives an access token.

The mock serves anonymous callers as before; a caller that uses a service account (its ``token_uri``
pointing here) is then known to the request log by the account's name (``<name>@...``), the way GCP's
audit log names the principal. The assertion's signature is not checked: only who it claims to be."""

from __future__ import annotations

import base64
import json

from werkzeug.wrappers import Request, Response

from mockclouds.requestlog import named_token

TOKEN_PATH = "/token"
ISSUED = "ya29.awan-mock"        # the access token's body; the caller's name follows it
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _error(code: str, description: str) -> Response:
    return Response(json.dumps({"error": code, "error_description": description}), 400,
                    mimetype="application/json")


def _claims(assertion: str) -> dict[str, object]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return claims


def token_grant(request: Request) -> Response:
    if request.form.get("grant_type") != _JWT_BEARER:
        return _error("unsupported_grant_type", f"grant_type must be {_JWT_BEARER}")
    try:
        claims = _claims(request.form.get("assertion", ""))
    except ValueError as e:
        return _error("invalid_grant", f"assertion: {e}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or "@" not in issuer:
        return _error("invalid_grant", "assertion: iss must be a service account's email")
    body = {"access_token": named_token(ISSUED, issuer.split("@", 1)[0]), "expires_in": 3600,
            "token_type": "Bearer"}
    return Response(json.dumps(body), 200, mimetype="application/json")
