"""Bearer tokens mapped to a team and a role (cluster-admin | admin | member | viewer)."""

from controlplane.auth.tokens import (
    Principal,
    TokenError,
    create_token,
    expiry_from,
    list_tokens,
    revoke_token,
    verify_token,
)

__all__ = ["Principal", "TokenError", "create_token", "expiry_from", "list_tokens", "revoke_token", "verify_token"]
