"""Opaque page cursors for list endpoints: the last id of the page, so the next page is a keyset query
(``id > last``), as cheap on page 200 as on page 1. Opaque so the encoding may change."""

from __future__ import annotations

import base64
import binascii

from controlplane.errors import Invalid

_PREFIX = "id:"


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        value = int(text.removeprefix(_PREFIX))
        if not 0 <= value < 2**31:
            raise ValueError(value)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor", "not a cursor from this API (pass nextCursor as it came)") from None
