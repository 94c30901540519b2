"""The mock's fixed identity and a throwaway API signing key: the `oci` SDK signs every request with an RSA
key, so a configuration needs one; the mock checks the keyId (tenancy/user/fingerprint), not the signature."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

TENANCY = "ocid1.tenancy.oc1..aaaaaaaaawanmocktenancy"
USER = "ocid1.user.oc1..aaaaaaaaawanmockuser"


@cache
def throwaway_key() -> tuple[str, str]:
    """(PEM private key, its fingerprint), made once per process and never written anywhere but a config."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()     # OCI's key fingerprint is MD5
    return pem, ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def key_id() -> str:
    """The keyId an SDK configured with the mock's identity puts in its Authorization header."""
    return f"{TENANCY}/{USER}/{throwaway_key()[1]}"


def parse_key_id(authorization: str) -> str | None:
    """keyId from ``Signature version="1",keyId="...",algorithm=...``; None when absent."""
    if not authorization.startswith("Signature "):
        return None
    for part in authorization[len("Signature "):].split(","):
        k, _, v = part.strip().partition("=")
        if k == "keyId":
            return v.strip('"')
    return None


def fake_ocid(kind: str, region: str, seed: str) -> str:
    """An OCID-shaped id: ``ocid1.<kind>.oc1.<region>.<unique>``."""
    tail = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower().rstrip("=")[:48]
    return f"ocid1.{kind}.oc1.{region}.{tail}"
