"""WeChat's message encryption scheme (WXBizMsgCrypt), on `cryptography`.

AES-256-CBC with IV = key[:16] and PKCS#7 padding to 32-byte blocks over
``random(16) + len(msg) as 4 bytes big-endian + msg + appid``; the signature is
sha1 over the sorted [token, timestamp, nonce, encrypt]. See docs/wechat.md §8.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Sequence
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["CryptoError", "WXBizMsgCrypt", "push_envelope"]

CryptoErrorCode = Literal[
    "bad_signature",
    "bad_base64",
    "bad_ciphertext",
    "bad_padding",
    "bad_length",
    "bad_appid",
    "bad_key",
]

BLOCK_SIZE = 32  # WeChat pads to 32 bytes, not AES's 16
RANDOM_PREFIX_LEN = 16
_HEADER_LEN = RANDOM_PREFIX_LEN + 4

# WeChat generates keys from [a-zA-Z0-9]; '+' and '/' are accepted because they are
# valid base64 and an operator may have typed a key produced by another tool.
_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}")
# Values we put into reply XML ourselves: keep them free of markup.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")

# When every key fails, report the failure that got furthest: an appid mismatch under the
# right key says more than the random-looking padding produced by the wrong one.
_DECRYPT_FAILURE_RANK: dict[str, int] = {"bad_padding": 0, "bad_length": 1, "bad_appid": 2}


class CryptoError(ValueError):
    """A message that must be rejected; `code` says why, the message never holds key material."""

    def __init__(self, code: CryptoErrorCode, message: str = "") -> None:
        super().__init__(code, message)
        self.code: CryptoErrorCode = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


def _decode_key(encoding_aes_key: str) -> bytes:
    if not isinstance(encoding_aes_key, str) or not _KEY_RE.fullmatch(encoding_aes_key):
        raise CryptoError("bad_key", "EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:  # cannot happen for 43 base64 characters; kept as a guard
        raise CryptoError("bad_key", "EncodingAESKey does not decode to 32 bytes")
    return key


def _pkcs7_pad(data: bytes) -> bytes:
    pad = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([pad]) * pad


class WXBizMsgCrypt:
    def __init__(
        self,
        *,
        token: str,
        encoding_aes_key: str,
        appid: str,
        previous_encoding_aes_keys: Sequence[str] = (),
    ) -> None:
        if not token:
            raise ValueError("token is required")
        if not appid:
            raise ValueError("appid is required")
        if isinstance(previous_encoding_aes_keys, str):
            # A bare string would be iterated character by character.
            raise TypeError("previous_encoding_aes_keys must be a sequence of keys, not a str")
        self._token = token
        self._appid = appid.encode()
        self._key = _decode_key(encoding_aes_key)
        # Current key first: it is the one that should work; previous ones cover rotation (docs/wechat.md §8).
        keys = [self._key]
        for k in previous_encoding_aes_keys:
            decoded = _decode_key(k)
            if decoded not in keys:
                keys.append(decoded)
        self._decrypt_keys = tuple(keys)

    def __repr__(self) -> str:  # never show key material
        return f"WXBizMsgCrypt(appid={self._appid.decode()!r})"

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        parts = sorted([self._token, timestamp, nonce, encrypt])
        return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 (WeChat's signature is SHA-1)

    def verify_signature(self, *, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.sign(timestamp, nonce, encrypt).encode()
        # Bytes, because compare_digest rejects non-ASCII str with TypeError, and attackers choose the input.
        given = (msg_signature or "").strip().lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
            raise CryptoError("bad_signature", "msg_signature does not match")

    def encrypt(self, plaintext: bytes, *, random_prefix: bytes | None = None) -> str:
        if not isinstance(plaintext, bytes):
            raise TypeError("plaintext must be bytes")
        if random_prefix is None:
            random_prefix = os.urandom(RANDOM_PREFIX_LEN)
        elif len(random_prefix) != RANDOM_PREFIX_LEN:
            raise ValueError(f"random_prefix must be {RANDOM_PREFIX_LEN} bytes")
        full = random_prefix + struct.pack(">I", len(plaintext)) + plaintext + self._appid
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        ciphertext = encryptor.update(_pkcs7_pad(full)) + encryptor.finalize()
        return base64.b64encode(ciphertext).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise CryptoError("bad_base64", "Encrypt is not valid base64") from None
        if not ciphertext or len(ciphertext) % BLOCK_SIZE:
            # Every FullStr is padded to whole 32-byte blocks, so anything else was cut or forged.
            raise CryptoError("bad_ciphertext", "ciphertext is not a whole number of 32-byte blocks")

        best: CryptoError | None = None
        for key in self._decrypt_keys:
            try:
                return self._open(key, ciphertext)
            except CryptoError as exc:
                if best is None or _DECRYPT_FAILURE_RANK[exc.code] > _DECRYPT_FAILURE_RANK[best.code]:
                    best = exc
        assert best is not None
        raise best

    def _open(self, key: bytes, ciphertext: bytes) -> bytes:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK_SIZE or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding", "invalid PKCS#7 padding")
        full = padded[:-pad]
        if len(full) < _HEADER_LEN:
            raise CryptoError("bad_length", "plaintext shorter than its header")
        (msg_len,) = struct.unpack(">I", full[RANDOM_PREFIX_LEN:_HEADER_LEN])
        msg_end = _HEADER_LEN + msg_len
        if msg_end > len(full):
            raise CryptoError("bad_length", "length field exceeds the plaintext")
        if not hmac.compare_digest(full[msg_end:], self._appid):
            raise CryptoError("bad_appid", "message was encrypted for another appid")
        return full[_HEADER_LEN:msg_end]

    def decrypt_message(self, *, encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> bytes:
        # Signature first: an unauthenticated sender must learn nothing from our padding checks.
        self.verify_signature(msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, encrypt=encrypt)
        return self.decrypt(encrypt)

    def encrypt_reply(
        self,
        plaintext: bytes,
        *,
        timestamp: str,
        nonce: str,
        random_prefix: bytes | None = None,
    ) -> str:
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise ValueError("timestamp must be decimal digits")
        if not _NONCE_RE.fullmatch(nonce):
            raise ValueError("nonce must be 1-64 characters of [A-Za-z0-9_-]")
        encrypt = self.encrypt(plaintext, random_prefix=random_prefix)
        signature = self.sign(timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


def push_envelope(*, appid: str, encrypt: str) -> bytes:
    """The body WeChat POSTs to the platform's authorization-event URL (docs/wechat.md §2: AppId, not ToUserName)."""
    if "]]>" in appid or "]]>" in encrypt:
        raise ValueError("appid and encrypt must not contain ']]>'")
    return f"<xml><AppId><![CDATA[{appid}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
