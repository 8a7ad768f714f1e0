"""The signature is HMAC-SHA256 over timestamp + "." + body, exactly as docs/webhooks.md says."""

from __future__ import annotations

import hashlib
import hmac

from webhooks import signing


def test_signature_is_hmac_sha256_of_timestamp_dot_body_hex():
    body = b'{"type":"ping"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signing.signature("whsec_test", 1700000000, body) == expected
    assert signing.signature_header(["whsec_test"], 1700000000, body) == f"v1={expected}"


def test_verification_accepts_any_listed_signature_and_refuses_a_changed_body_or_timestamp():
    body = signing.body_encode({"b": 1, "a": "客服"})
    header = signing.signature_header(["new", "old"], 1700000000, body)
    assert signing.signature_verify("old", "1700000000", header, body)
    assert signing.signature_verify("new", "1700000000", header, body)
    assert not signing.signature_verify("other", "1700000000", header, body)
    assert not signing.signature_verify("new", "1700000001", header, body)
    assert not signing.signature_verify("new", "1700000000", header, body + b" ")
    assert not signing.signature_verify("new", "soon", header, body)


def test_bodies_are_utf8_json_with_sorted_keys():
    assert signing.body_encode({"b": 1, "a": "客服"}) == '{"a":"客服","b":1}'.encode()


def test_secrets_are_random_and_prefixed():
    first, second = signing.secret_generate(), signing.secret_generate()
    assert first != second
    assert first.startswith("whsec_") and len(first) > 40
