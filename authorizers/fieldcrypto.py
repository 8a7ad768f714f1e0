"""Encryption at rest for secrets kept in the database (AES-256-GCM).

A stored value reads ``v1:<kid>:<base64(nonce || ciphertext+tag)>``. The associated data binds each
ciphertext to its row and field (``context``), so a value copied to another row or field fails to
decrypt instead of silently becoming that row's secret. Keys come from ``FIELD_ENCRYPTION_KEYS``
(``kid:base64key,…``): the first encrypts, every listed key decrypts, which is how rotation works.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_VERSION = "v1"
_NONCE_BYTES = 12


class FieldDecryptionError(Exception):
    """A stored secret could not be decrypted: unknown key id, wrong key, or a moved ciphertext."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    primary_kid: str
    keys: dict[str, AESGCM]


def parse_keys(spec: str) -> KeyRing:
    keys: dict[str, AESGCM] = {}
    primary = ""
    for position, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not kid.isalnum():
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS entry {position + 1} must read kid:base64key")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS key {kid!r} is not valid base64") from None
        if len(raw) != 32:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS key {kid!r} must be 32 bytes (AES-256), got {len(raw)}")
        if kid in keys:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS lists key id {kid!r} twice")
        keys[kid] = AESGCM(raw)
        primary = primary or kid
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must list at least one key")
    return KeyRing(primary_kid=primary, keys=keys)


@lru_cache(maxsize=4)
def _ring(spec: str) -> KeyRing:
    return parse_keys(spec)


def keyring() -> KeyRing:
    return _ring(settings.FIELD_ENCRYPTION_KEYS)


def encrypt(plaintext: str, *, context: str) -> str:
    ring = keyring()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = ring.keys[ring.primary_kid].encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return f"{_VERSION}:{ring.primary_kid}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(stored: str, *, context: str) -> str:
    version, kid, payload = _split(stored)
    key = keyring().keys.get(kid)
    if key is None:
        raise FieldDecryptionError(f"no key with id {kid!r} in FIELD_ENCRYPTION_KEYS")
    try:
        raw = base64.b64decode(payload, validate=True)
        plaintext = key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError):
        raise FieldDecryptionError(f"ciphertext does not decrypt for {context!r} with key {kid!r}") from None
    return plaintext.decode("utf-8")


def key_id(stored: str) -> str:
    return _split(stored)[1]


def needs_rotation(stored: str) -> bool:
    return bool(stored) and key_id(stored) != keyring().primary_kid


def _split(stored: str) -> tuple[str, str, str]:
    parts = stored.split(":", 2)
    if len(parts) != 3 or parts[0] != _VERSION:
        raise FieldDecryptionError("not an encrypted value")
    return parts[0], parts[1], parts[2]
