"""The process-wide WeChat client and message crypto, built from settings.

One client per process keeps one pooled HTTP session; tests that change settings get a new one
because the cache key includes every setting used.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from wechat.client import CallObserver, WeChatClient
from wechat.crypto import WXBizMsgCrypt


def wechat_client() -> WeChatClient:
    return _client(
        settings.WECHAT_API_BASE,
        settings.WECHAT_COMPONENT_APPID,
        settings.WECHAT_COMPONENT_APPSECRET,
        settings.WECHAT_CONNECT_TIMEOUT,
        settings.WECHAT_READ_TIMEOUT,
        settings.WECHAT_CALL_OBSERVER,
    )


@lru_cache(maxsize=4)
def _client(
    api_base: str, appid: str, secret: str, connect_timeout: float, read_timeout: float, observer: str
) -> WeChatClient:
    # The observer is named in settings (the metrics live above this app and are not imported here).
    call_observer: CallObserver | None = import_string(observer) if observer else None
    return WeChatClient(
        api_base=api_base,
        component_appid=appid,
        component_appsecret=secret,
        timeout=(connect_timeout, read_timeout),
        observer=call_observer,
    )


def message_crypto() -> WXBizMsgCrypt:
    return _crypto(
        settings.WECHAT_COMPONENT_TOKEN,
        settings.WECHAT_COMPONENT_AES_KEY,
        settings.WECHAT_COMPONENT_APPID,
        tuple(settings.WECHAT_COMPONENT_PREVIOUS_AES_KEYS),
    )


@lru_cache(maxsize=4)
def _crypto(token: str, aes_key: str, appid: str, previous: tuple[str, ...]) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(token=token, encoding_aes_key=aes_key, appid=appid, previous_encoding_aes_keys=previous)
