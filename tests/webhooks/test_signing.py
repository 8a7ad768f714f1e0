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
    at = 1700000000  # the receiver's clock, at the signing time
    assert signing.signature_verify("old", "1700000000", header, body, now=at)
    assert signing.signature_verify("new", "1700000000", header, body, now=at)
    assert not signing.signature_verify("other", "1700000000", header, body, now=at)
    assert not signing.signature_verify("new", "1700000001", header, body, now=at)
    assert not signing.signature_verify("new", "1700000000", header, body + b" ", now=at)
    assert not signing.signature_verify("new", "soon", header, body, now=at)


def test_verification_refuses_a_timestamp_outside_the_window_as_the_docs_example_does():
    body = b'{"type":"ping"}'
    header = signing.signature_header(["s"], 1700000000, body)
    assert signing.signature_verify("s", "1700000000", header, body, now=1700000000 + 300)
    assert signing.signature_verify("s", "1700000000", header, body, now=1700000000 - 300)
    assert not signing.signature_verify("s", "1700000000", header, body, now=1700000000 + 301)  # a replay
    assert not signing.signature_verify("s", "1700000000", header, body, now=1700000000 - 301)  # from the future
    assert not signing.signature_verify("s", "1700000000", header, body)  # today: years too old
    assert not signing.signature_verify("s", "-1700000000", header, body, now=1700000000)
    assert signing.TOLERANCE_SECONDS == 300


def test_the_docs_example_and_signature_verify_agree():
    """docs/webhooks.md's verify(), run as written, decides as signature_verify does."""
    import re
    import time
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, flags=re.S)
    assert code is not None
    namespace: dict = {}
    exec(code.group(1), namespace)  # our own documentation, run as written
    body = b'{"type":"ping"}'
    for age in (0, 299, 301, 10_000):
        stamp = str(int(time.time()) - age)
        header = signing.signature_header(["s"], int(stamp), body)
        headers = {"Kfp-Timestamp": stamp, "Kfp-Signature": header}
        assert namespace["verify"]("s", headers, body) == signing.signature_verify("s", stamp, header, body), age


def test_bodies_are_utf8_json_with_sorted_keys():
    assert signing.body_encode({"b": 1, "a": "客服"}) == '{"a":"客服","b":1}'.encode()


def test_secrets_are_random_and_prefixed():
    first, second = signing.secret_generate(), signing.secret_generate()
    assert first != second
    assert first.startswith("whsec_") and len(first) > 40
