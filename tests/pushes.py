"""Building WeChat's encrypted pushes the way WeChat does, for tests that post to the events URL."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings

from wechat.crypto import WXBizMsgCrypt, push_envelope


def push_xml(**fields: object) -> bytes:
    inner = "".join(
        f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>".encode()


def encrypted_push(
    plaintext: bytes,
    *,
    timestamp: int | str | None = None,
    nonce: str = "1234567",
    aes_key: str | None = None,
    appid: str | None = None,
    token: str | None = None,
) -> tuple[str, bytes]:
    """(query string, body) of a push, signed and encrypted with the platform's (or given) keys."""
    crypto = WXBizMsgCrypt(
        token=token or settings.WECHAT_COMPONENT_TOKEN,
        encoding_aes_key=aes_key or settings.WECHAT_COMPONENT_AES_KEY,
        appid=appid or settings.WECHAT_COMPONENT_APPID,
    )
    ts = str(timestamp if timestamp is not None else int(time.time()))
    encrypt = crypto.encrypt(plaintext)
    query = urlencode(
        {
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": crypto.sign(ts, nonce, encrypt),
            "signature": "unused",
        }
    )
    return query, push_envelope(appid=appid or settings.WECHAT_COMPONENT_APPID, encrypt=encrypt)


def ticket_push(ticket: str = "ticket@@@abc", create_time: int | None = None) -> bytes:
    return push_xml(
        AppId=settings.WECHAT_COMPONENT_APPID,
        CreateTime=create_time or int(time.time()),
        InfoType="component_verify_ticket",
        ComponentVerifyTicket=ticket,
    )
