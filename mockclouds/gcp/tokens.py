"""Who a GCP caller is: the mock serves anonymous callers as before; a caller that uses a service account
is known to the request log by the account's name (``<name>@...``), the way GCP's audit log names the
principal. The Google clients send a self-signed JWT as the bearer token (``iss``: the account); should a
client exchange its JWT for an access token instead, ``token_grant`` is Google's OAuth token endpoint
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``), as much of it as that needs. No signature
is checked: only who the caller claims to be."""

from __future__ import annotations

import base64
import json

from werkzeug.datastructures import Headers
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
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError) as e:      # binascii.Error and JSONDecodeError are ValueErrors
        raise ValueError(f"not a JWT ({e})") from None
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return claims


def _account(claims: dict[str, object]) -> str:
    issuer = claims.get("iss")
    return issuer.split("@", 1)[0] if isinstance(issuer, str) and "@" in issuer else ""


def caller_of_jwt(headers: Headers) -> str:
    """The service account's name in a self-signed JWT bearer token; "" for any other caller."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    try:
        return _account(_claims(token.strip()))
    except ValueError:       # not a JWT (anonymous callers send no token; named tokens are not JWTs)
        return ""


def token_grant(request: Request) -> Response:
    if request.form.get("grant_type") != _JWT_BEARER:
        return _error("unsupported_grant_type", f"grant_type must be {_JWT_BEARER}")
    try:
        claims = _claims(request.form.get("assertion", ""))
    except ValueError as e:
        return _error("invalid_grant", f"assertion: {e}")
    account = _account(claims)
    if not account:
        return _error("invalid_grant", "assertion: iss must be a service account's email")
    body = {"access_token": named_token(ISSUED, account), "expires_in": 3600,
            "token_type": "Bearer"}
    return Response(json.dumps(body), 200, mimetype="application/json")
