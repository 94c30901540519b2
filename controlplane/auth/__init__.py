"""Bearer tokens mapped to a team and a role (admin | member | viewer)."""

from controlplane.auth.tokens import Principal, TokenError, create_token, verify_token

__all__ = ["Principal", "TokenError", "create_token", "verify_token"]
