"""Fuzzing the component events URL: whatever arrives, no 500, nothing changed by an invalid push,
every valid push applied once.

Hypothesis generates requests to POST /wechat/component/events/: valid pushes (tickets, revocations
of unknown appids, InfoTypes that are not ours), duplicated and out of order, and invalid ones —
bad and missing signatures, bad base64, ciphertexts of the wrong length or padding, another appid
inside or outside the envelope, non-UTF-8, DTDs and entities (billion laughs, external entities),
oversized bodies, stale, future and absurd timestamps, replays of a valid push with a changed body.
Each is posted through Django's test client (the whole middleware stack, in-process) with the
platform's real keys; valid ones are encrypted with wechat/crypto.py as WeChat does.
"""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from authorizers.models import Authorizer, ComponentCredential, ComponentEvent
from kfaccounts.models import DeletionRequest
from tests.reliability import figures
from wechat.crypto import WXBizMsgCrypt, push_envelope

pytestmark = [pytest.mark.django_db, pytest.mark.reliability]

EXAMPLES = figures.size(10_000, 300)
URL = "/wechat/component/events/"


@dataclass
class Case:
    kind: str
    valid: bool
    query: str
    body: bytes
    identity: str | None = None  # for valid pushes: what makes them the same push
    ticket: str | None = None
    create_time: int | None = None
    repeat: int = 1


def _crypto(appid: str | None = None, aes_key: str | None = None) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(
        token=settings.WECHAT_COMPONENT_TOKEN,
        encoding_aes_key=aes_key or settings.WECHAT_COMPONENT_AES_KEY,
        appid=appid or settings.WECHAT_COMPONENT_APPID,
    )


def _query(
    encrypt: str,
    *,
    timestamp: str | None = None,
    nonce: str = "n0nce",
    crypto: WXBizMsgCrypt | None = None,
    drop: str | None = None,
    **override: str,
) -> str:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    params = {
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": (crypto or _crypto()).sign(ts, nonce, encrypt),
        "signature": "unused",
    }
    params.update(override)
    params.pop(drop or "", None)
    return urlencode(params)


def _xml(fields: dict[str, object]) -> bytes:
    inner = "".join(
        f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>".encode()


def _raw_encrypt(full_padded: bytes) -> str:
    """AES-CBC over exactly these bytes, with the platform's key: for wrong padding and lengths."""
    key = base64.b64decode(settings.WECHAT_COMPONENT_AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(full_padded) + encryptor.finalize()).decode()


def _envelope(encrypt: str, appid: str | None = None) -> bytes:
    return push_envelope(appid=appid or settings.WECHAT_COMPONENT_APPID, encrypt=encrypt)


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
tickets = st.from_regex(r"ticket@@@[A-Za-z0-9_-]{20,60}", fullmatch=True)


@st.composite
def valid_pushes(draw: st.DrawFn) -> Case:
    now = int(time.time())
    create_time = now - draw(st.integers(0, 500))
    kind = draw(st.sampled_from(["ticket", "ticket", "unauthorized_unknown", "unknown_infotype"]))
    if kind == "ticket":
        ticket = draw(tickets)
        fields: dict[str, object] = {
            "AppId": settings.WECHAT_COMPONENT_APPID,
            "CreateTime": create_time,
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": ticket,
        }
        identity = f"component_verify_ticket||{create_time}||{ticket}"
    elif kind == "unauthorized_unknown":
        appid = "wx" + draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True))
        fields = {
            "AppId": settings.WECHAT_COMPONENT_APPID,
            "CreateTime": create_time,
            "InfoType": "unauthorized",
            "AuthorizerAppid": appid,
        }
        identity, ticket = f"unauthorized|{appid}|{create_time}||", None
    else:
        info = draw(
            st.from_regex(r"[a-z_]{3,30}", fullmatch=True).filter(
                lambda s: s not in ("component_verify_ticket", "authorized", "updateauthorized", "unauthorized")
            )
        )
        fields = {"AppId": settings.WECHAT_COMPONENT_APPID, "CreateTime": create_time, "InfoType": info}
        identity, ticket = f"{info}||{create_time}||", None
    encrypt = _crypto().encrypt(_xml(fields))
    nonce = draw(st.from_regex(r"[0-9A-Za-z]{1,16}", fullmatch=True))
    return Case(
        kind=f"valid {kind}",
        valid=True,
        query=_query(encrypt, nonce=nonce, timestamp=str(now)),
        body=_envelope(encrypt),
        identity=identity,
        ticket=ticket,
        create_time=create_time,
        repeat=draw(st.sampled_from([1, 1, 2, 3])),  # WeChat retries: duplicates
    )


def _ticket_plain(ticket: str = "ticket@@@fuzz-invalid-never-stored") -> bytes:
    return _xml(
        {
            "AppId": settings.WECHAT_COMPONENT_APPID,
            "CreateTime": int(time.time()),
            "InfoType": "component_verify_ticket",
            "ComponentVerifyTicket": ticket,
        }
    )


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Encrypt>&lol3;</Encrypt></xml>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>'
)
DTD_ONLY = b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><Encrypt>abc</Encrypt></xml>'


@st.composite
def invalid_pushes(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "bad signature",
                "missing parameter",
                "bad base64",
                "wrong length",
                "wrong padding",
                "wrong appid inside",
                "wrong appid outside",
                "non-UTF-8 body",
                "non-UTF-8 plaintext",
                "billion laughs",
                "external entity",
                "DTD",
                "entity in plaintext",
                "oversized",
                "stale timestamp",
                "future timestamp",
                "absurd timestamp",
                "replay with another body",
                "bad inner fields",
                "random bytes",
                "wrong key",
            ]
        )
    )
    good = _crypto().encrypt(_ticket_plain())
    now = int(time.time())
    if kind == "bad signature":
        signature = draw(st.one_of(st.from_regex(r"[0-9a-f]{40}", fullmatch=True), texts, st.just("")))
        return Case(kind, False, _query(good, msg_signature=signature), _envelope(good))
    if kind == "missing parameter":
        dropped = draw(st.sampled_from(["msg_signature", "timestamp", "nonce"]))
        return Case(kind, False, _query(good, drop=dropped), _envelope(good))
    if kind == "bad base64":
        junk = draw(st.one_of(texts, st.from_regex(r"[A-Za-z0-9+/]{5,60}={0,3}", fullmatch=True))) + "*"
        return Case(kind, False, _query(junk), _envelope(junk))
    if kind == "wrong length":
        raw = os.urandom(draw(st.integers(1, 200).filter(lambda n: n % 16)))
        enc = base64.b64encode(raw).decode()
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind == "wrong padding":
        full = os.urandom(16) + struct.pack(">I", 10) + b"0123456789" + settings.WECHAT_COMPONENT_APPID.encode()
        pad_byte = draw(st.sampled_from([0, 33, 255]))
        padded = full + bytes([pad_byte]) * (32 - len(full) % 32)
        enc = _raw_encrypt(padded)
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind == "wrong appid inside":
        enc = _crypto(appid="wx" + "1" * 16).encrypt(_ticket_plain())
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind == "wrong appid outside":
        return Case(kind, False, _query(good), _envelope(good, appid="wx" + "2" * 16))
    if kind == "non-UTF-8 body":
        return Case(
            kind,
            False,
            _query(good),
            b"<xml><Encrypt>" + bytes([0xFF, 0xFE, 0xC3]) + good.encode() + b"</Encrypt></xml>",
        )
    if kind == "non-UTF-8 plaintext":
        enc = _crypto().encrypt(b"<xml><InfoType>\xff\xfe" + os.urandom(8) + b"</InfoType></xml>")
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind in ("billion laughs", "external entity", "DTD"):
        body = {"billion laughs": BILLION_LAUGHS, "external entity": EXTERNAL_ENTITY, "DTD": DTD_ONLY}[kind]
        return Case(kind, False, _query("abc"), body)
    if kind == "entity in plaintext":
        enc = _crypto().encrypt(draw(st.sampled_from([BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY])))
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind == "oversized":
        size = settings.WECHAT_EVENT_MAX_BODY + draw(st.integers(1, 4096))
        return Case(kind, False, _query(good), b"<xml><Encrypt>" + b"A" * size + b"</Encrypt></xml>")
    if kind == "stale timestamp":
        ts = str(now - settings.WECHAT_EVENT_MAX_SKEW - draw(st.integers(1, 10**6)))
        return Case(kind, False, _query(good, timestamp=ts), _envelope(good))
    if kind == "future timestamp":
        ts = str(now + settings.WECHAT_EVENT_MAX_SKEW + draw(st.integers(1, 10**6)))
        return Case(kind, False, _query(good, timestamp=ts), _envelope(good))
    if kind == "absurd timestamp":
        ts = draw(st.one_of(st.integers(-(10**30), 10**30).map(str), texts, st.just("1e9"), st.just("NaN")))
        if ts.strip().lstrip("-").isdigit() and abs(int(ts) - now) <= settings.WECHAT_EVENT_MAX_SKEW:
            ts = "0"
        return Case(kind, False, _query(good, timestamp=ts), _envelope(good))
    if kind == "replay with another body":
        # A signature taken from one push, put on another body.
        other = _crypto().encrypt(_ticket_plain("ticket@@@another-body-never-stored"))
        ts, nonce = str(now), "n0nce"
        return Case(kind, False, _query(good, timestamp=ts, nonce=nonce), _envelope(other))
    if kind == "bad inner fields":
        fields: dict[str, object] = draw(
            st.sampled_from(
                [
                    {"AppId": settings.WECHAT_COMPONENT_APPID, "CreateTime": now},  # no InfoType
                    {
                        "AppId": settings.WECHAT_COMPONENT_APPID,
                        "CreateTime": now,
                        "InfoType": "component_verify_ticket",
                    },
                    {
                        "AppId": settings.WECHAT_COMPONENT_APPID,
                        "CreateTime": "soon",
                        "InfoType": "component_verify_ticket",
                        "ComponentVerifyTicket": "ticket@@@x",
                    },
                    {"AppId": settings.WECHAT_COMPONENT_APPID, "CreateTime": now, "InfoType": "authorized"},
                    {"AppId": settings.WECHAT_COMPONENT_APPID, "CreateTime": now, "InfoType": "unauthorized"},
                    {
                        "AppId": settings.WECHAT_COMPONENT_APPID,
                        "CreateTime": 2**40,
                        "InfoType": "component_verify_ticket",
                        "ComponentVerifyTicket": "ticket@@@y",
                    },
                    {
                        "AppId": "wx" + "3" * 16,
                        "CreateTime": now,
                        "InfoType": "component_verify_ticket",
                        "ComponentVerifyTicket": "ticket@@@z",
                    },
                ]
            )
        )
        enc = _crypto().encrypt(_xml(fields))
        return Case(kind, False, _query(enc), _envelope(enc))
    if kind == "wrong key":
        other_key = "".join(
            draw(
                st.lists(
                    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                    min_size=43,
                    max_size=43,
                )
            )
        )
        enc = _crypto(aes_key=other_key).encrypt(_ticket_plain())
        return Case(kind, False, _query(enc), _envelope(enc))
    body = draw(st.binary(max_size=2048))
    return Case(kind, False, _query(good), body)


def _state() -> tuple[Any, ...]:
    credential = ComponentCredential.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).first()
    return (
        ComponentEvent.objects.count(),
        AuditEvent.objects.count(),
        Authorizer.objects.count(),
        DeletionRequest.objects.count(),
        credential and (credential.verify_ticket_ciphertext, credential.ticket_created_at),
    )


def test_component_events_url_withstands_generated_pushes(client: Client) -> None:
    counts = {"requests": 0, "5xx": 0, "invalid": 0, "valid": 0, "state changes from invalid": 0}
    applied: dict[str, int] = {}
    newest_ticket: dict[str, Any] = {}

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.one_of(valid_pushes(), invalid_pushes(), invalid_pushes()))
    def post_one(case: Case) -> None:
        before = _state()
        for _ in range(case.repeat):
            response = client.generic("POST", f"{URL}?{case.query}", case.body, content_type="text/xml")
            counts["requests"] += 1
            if response.status_code >= 500:
                counts["5xx"] += 1
            assert response.status_code < 500, (case.kind, response.status_code)
            if case.valid:
                assert (response.status_code, response.content) == (200, b"success"), (
                    case.kind,
                    response.content[:200],
                )
            else:
                assert 400 <= response.status_code < 500, (case.kind, response.status_code, response.content[:200])
        if not case.valid:
            counts["invalid"] += 1
            if _state() != before:
                counts["state changes from invalid"] += 1
            assert _state() == before, f"{case.kind} changed the state"
            return
        counts["valid"] += 1
        assert case.identity is not None
        applied[case.identity] = applied.get(case.identity, 0) + 1
        if case.ticket and (not newest_ticket or case.create_time >= newest_ticket["at"]):
            newest_ticket.update(ticket=case.ticket, at=case.create_time)

    post_one()

    # Each distinct valid push is one event, however often it was posted and in whatever order.
    assert ComponentEvent.objects.count() == len(applied)
    if newest_ticket:
        from authorizers.tokens import _verify_ticket

        credential = ComponentCredential.objects.get(component_appid=settings.WECHAT_COMPONENT_APPID)
        assert credential.ticket_created_at is not None
        assert credential.ticket_created_at.timestamp() == newest_ticket["at"]
        # Among pushes with the same CreateTime the first one kept is as good as any (WeChat sends one).
        assert _verify_ticket(credential).startswith("ticket@@@")
    figures.record(
        "callback fuzzing",
        generated_requests=counts["requests"],
        invalid_pushes=counts["invalid"],
        valid_pushes=counts["valid"],
        distinct_valid_pushes=len(applied),
        **{"5xx": counts["5xx"]},
        state_changes_from_invalid=counts["state changes from invalid"],
    )
    assert counts["requests"] >= EXAMPLES
