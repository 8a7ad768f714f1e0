"""Shared fixtures. WeChat is faked only at the HTTP edge: `responses` here, the sandbox in tests/e2e."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import responses
from django.utils import timezone

from tests.browser.chromium import CHROMIUM, LAUNCH_ARGS

if TYPE_CHECKING:
    from authorizers.models import Authorizer

WECHAT = "http://127.0.0.1:9"  # the discard port: if anything escapes `responses`, it fails locally
_appids = itertools.count(1)


@pytest.fixture(autouse=True)
def _isolated_wechat(settings) -> None:
    settings.WECHAT_API_BASE = WECHAT
    settings.WECHAT_MP_BASE = WECHAT


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache (Redis when REDIS_URL is set): no throttle carried over."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    """Unit tests run tasks in-process; tests/e2e runs real workers instead."""
    from platform_app.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def wechat() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def component_ready(db):
    """The platform has a fresh verify ticket and component token, as after WeChat's first push."""
    from django.conf import settings

    from authorizers import fieldcrypto
    from authorizers.models import ComponentCredential
    from authorizers.tokens import component_ctx

    appid = settings.WECHAT_COMPONENT_APPID
    now = timezone.now()
    return ComponentCredential.objects.create(
        component_appid=appid,
        verify_ticket_ciphertext=fieldcrypto.encrypt("ticket@@@test", context=component_ctx(appid, "verify_ticket")),
        ticket_created_at=now,
        ticket_received_at=now,
        access_token_ciphertext=fieldcrypto.encrypt("COMPONENT_TOKEN", context=component_ctx(appid, "access_token")),
        access_token_expires_at=now + timedelta(hours=2),
    )


PLATFORM_B = {
    "name": "platform B",
    "component_appid": "wx00000000000000b2",
    "appsecret": "b2" * 16,
    "token": "PlatformBToken",
    "aes_key": "PlatformBEncodingAESKey0123456789abcdefghij",
}


@pytest.fixture
def platform_b(db):
    """A second platform served beside the default one, with a fresh ticket and component token
    (``COMPONENT_TOKEN_B``), as after its first push."""
    from audit.services import Actor
    from authorizers import fieldcrypto
    from authorizers.models import ComponentCredential
    from authorizers.platforms import platform_add
    from authorizers.tokens import component_ctx

    platform = platform_add(**PLATFORM_B, actor=Actor.system("test"))
    appid, now = platform.component_appid, timezone.now()
    ComponentCredential.objects.create(
        component_appid=appid,
        verify_ticket_ciphertext=fieldcrypto.encrypt("ticket@@@B", context=component_ctx(appid, "verify_ticket")),
        ticket_created_at=now,
        ticket_received_at=now,
        access_token_ciphertext=fieldcrypto.encrypt("COMPONENT_TOKEN_B", context=component_ctx(appid, "access_token")),
        access_token_expires_at=now + timedelta(hours=2),
    )
    return platform


@pytest.fixture
def make_authorizer(db) -> Callable[..., Authorizer]:
    """An authorizer as the authorization flow leaves it; eligible unless told otherwise.

    Its access token is ``ACCESS_<appid>`` and its refresh token ``REFRESH_<appid>``.
    """
    from authorizers.models import AccountKind, Authorizer
    from authorizers.tokens import authorizer_tokens_store

    def make(**fields) -> Authorizer:
        appid = fields.pop("appid", f"wx{next(_appids):016x}")
        token_ttl = fields.pop("token_ttl", 7200)
        values = {
            "nickname": f"Merchant {appid[-4:]}",
            "alias": f"shop{appid[-4:]}",
            "kind": AccountKind.SUBSCRIPTION,
            "service_type_id": 0,
            "verify_type_id": 0,
            "account_status": 1,
            "func_ids": [1, 2, 6],
            "authorized_at": timezone.now(),
            # Its openapi/quota/get was read today (tests of that read set this to None).
            "quota_checked_at": timezone.now(),
        }
        values.update(fields)
        authorizer = Authorizer(appid=appid, **values)
        authorizer_tokens_store(
            authorizer=authorizer,
            access_token=f"ACCESS_{appid}",
            expires_in=token_ttl,
            refresh_token=f"REFRESH_{appid}",
        )
        authorizer.save()
        return authorizer

    return make


@pytest.fixture
def api_client_for(db):
    """An APIClient authenticated with a fresh API key of the given merchant."""
    from rest_framework.test import APIClient

    from audit.services import Actor
    from authorizers.api_keys import api_key_issue

    def make(authorizer) -> APIClient:
        _, key = api_key_issue(authorizer=authorizer, actor=Actor.system("test"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        return client

    return make


def assert_api_key_401(response) -> None:
    """A merchant endpoint refused the caller's key: 401, the error envelope, and the scheme to use."""
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] in ("not_authenticated", "authentication_failed") and error["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; Django's ORM, used by the same tests
    # for setup and assertions, refuses to run while a loop is running unless told it is safe here.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
