"""The WeChat client and message crypto of each platform, one per process and platform.

One client per platform keeps one pooled HTTP session each; tests that change settings get a new one
because the cache key includes every setting used. The default platform's (``platform`` None, or the
environment's row) is built from the settings alone, without reading the database, exactly as
before platforms existed; another platform's from its stored credentials (authorizers/platforms.py).
"""

from __future__ import annotations

from functools import lru_cache, partial

from django.conf import settings
from django.utils.module_loading import import_string

from authorizers.models import Platform
from authorizers.platforms import platform_secrets
from wechat.client import CallObserver, WeChatClient
from wechat.crypto import WXBizMsgCrypt

# Clients (and crypto) kept per process: a few platforms, and the old ones a key rotation left behind.
_CACHED = 32


def wechat_client(platform: Platform | None = None) -> WeChatClient:
    secrets = platform_secrets(platform)
    return _client(
        settings.WECHAT_API_BASE,
        secrets.component_appid,
        secrets.appsecret,
        settings.WECHAT_CONNECT_TIMEOUT,
        settings.WECHAT_READ_TIMEOUT,
        settings.WECHAT_CALL_OBSERVER,
    )


@lru_cache(maxsize=_CACHED)
def _client(
    api_base: str, appid: str, secret: str, connect_timeout: float, read_timeout: float, observer: str
) -> WeChatClient:
    # The observer is named in settings (the metrics live above this app and are not imported here);
    # it is told which platform's client made the call, so the metrics are labelled by platform.
    call_observer: CallObserver | None = partial(import_string(observer), platform=appid) if observer else None
    return WeChatClient(
        api_base=api_base,
        component_appid=appid,
        component_appsecret=secret,
        timeout=(connect_timeout, read_timeout),
        observer=call_observer,
    )


def message_crypto(platform: Platform | None = None) -> WXBizMsgCrypt:
    secrets = platform_secrets(platform)
    return _crypto(secrets.token, secrets.aes_key, secrets.component_appid, secrets.previous_aes_keys)


@lru_cache(maxsize=_CACHED)
def _crypto(token: str, aes_key: str, appid: str, previous: tuple[str, ...]) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(token=token, encoding_aes_key=aes_key, appid=appid, previous_encoding_aes_keys=previous)
