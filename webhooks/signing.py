"""How an event is signed (docs/webhooks.md shows the receiving side).

    signature = hex(HMAC-SHA256(key=secret as UTF-8, message=timestamp + "." + body))

``timestamp`` is the decimal unix time in the ``Kfp-Timestamp`` header, ``body`` the exact bytes of
the request body. ``Kfp-Signature`` reads ``v1=<hex>``; during a secret rotation it carries a second
``v1=<hex>`` made with the previous secret, comma-separated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)
SCHEME = "v1"
# How far a receiver lets the signed time be from its own clock (docs/webhooks.md's `tolerance`).
TOLERANCE_SECONDS = 300


def secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def body_encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets_in_use: list[str], timestamp: int, body: bytes) -> str:
    return ", ".join(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets_in_use)


def signature_verify(
    secret: str,
    timestamp_header: str,
    signature_header_value: str,
    body: bytes,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """The receiving side's check, the same as docs/webhooks.md's example (the tests use it as a
    receiver would): a timestamp within ``tolerance`` seconds of ``now``, and any ``v1=`` matching."""
    if not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False  # a replay of an old (or a far-future) delivery
    expected = signature(secret, timestamp, body)
    offered = [part.strip().partition("=")[2] for part in signature_header_value.split(",") if "=" in part]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
