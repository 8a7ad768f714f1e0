"""Each platform has its own ticket, component token, client, alerts and holds (issue 19): what
happens on one platform changes nothing of another."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.services import Actor
from authorizers import fieldcrypto
from authorizers.alerts import alert_clear, merchant_held, platform_blocked, platform_error_seen
from authorizers.client import message_crypto, wechat_client
from authorizers.models import ComponentCredential, PlatformAlert
from authorizers.ticket_watch import verify_tickets_watch
from authorizers.tokens import (
    authorizer_ctx,
    authorizer_token_get,
    component_token_get,
    refresh_token_of,
    verify_ticket_store,
    with_authorizer_token,
)
from tests.conftest import PLATFORM_B, WECHAT
from wechat.crypto import CryptoError
from wechat.errors import IpNotWhitelisted, error_for

pytestmark = pytest.mark.django_db

COMPONENT_TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_component_token"
AUTHORIZER_TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_authorizer_token"
START_PUSH = f"{WECHAT}/cgi-bin/component/api_start_push_ticket"
B = PLATFORM_B["component_appid"]


def _calls(wechat, url: str) -> list:
    return [c for c in wechat.calls if c.request.url.split("?")[0] == url]


def test_each_platform_has_its_own_client_and_message_crypto(platform_b):
    default, b = wechat_client(), wechat_client(platform_b)
    assert default is not b and wechat_client(platform_b) is b  # one pooled client per platform
    assert "wx00000000000000b2" in repr(b) and settings.WECHAT_COMPONENT_APPID in repr(default)
    crypto = message_crypto(platform_b)
    encrypt = crypto.encrypt(b"<xml/>")
    assert crypto.decrypt(encrypt) == b"<xml/>"
    with pytest.raises(CryptoError):  # the default platform's key cannot read it
        message_crypto().decrypt(encrypt)
    with pytest.raises(CryptoError, match="signature"):  # nor does its token sign like B's
        message_crypto().verify_signature(
            msg_signature=crypto.sign("1", "n", encrypt), timestamp="1", nonce="n", encrypt=encrypt
        )


def test_a_platforms_ticket_and_component_token_are_its_own(wechat, component_ready, platform_b):
    now = timezone.now()
    assert verify_ticket_store(ticket="ticket@@@B2", created_at=now, platform=platform_b)
    ComponentCredential.objects.filter(component_appid=B).update(access_token_ciphertext="")
    wechat.post(COMPONENT_TOKEN_URL, json={"component_access_token": "NEW_B", "expires_in": 7200})
    assert component_token_get(platform=platform_b) == "NEW_B"
    (call,) = _calls(wechat, COMPONENT_TOKEN_URL)
    assert json.loads(call.request.body) == {
        "component_appid": B,
        "component_appsecret": PLATFORM_B["appsecret"],
        "component_verify_ticket": "ticket@@@B2",
    }
    # The default platform's ticket and token are untouched, and served without a call.
    assert component_token_get() == "COMPONENT_TOKEN"
    assert len(_calls(wechat, COMPONENT_TOKEN_URL)) == 1
    default = ComponentCredential.objects.get(component_appid=settings.WECHAT_COMPONENT_APPID)
    assert default.ticket_created_at == component_ready.ticket_created_at


def test_an_authorizer_is_refreshed_through_the_platform_it_authorized(wechat, platform_b, make_authorizer):
    merchant = make_authorizer(platform=platform_b, token_ttl=1)
    wechat.post(
        AUTHORIZER_TOKEN_URL,
        json={"authorizer_access_token": "AT_B", "expires_in": 7200, "authorizer_refresh_token": "RT_B"},
    )
    assert authorizer_token_get(authorizer_id=merchant.pk) == "AT_B"
    (call,) = _calls(wechat, AUTHORIZER_TOKEN_URL)
    assert call.request.url.endswith("component_access_token=COMPONENT_TOKEN_B")
    assert json.loads(call.request.body)["component_appid"] == B
    merchant.refresh_from_db()
    assert refresh_token_of(merchant) == "RT_B"


def test_another_platforms_merchant_tokens_are_bound_to_that_platform(platform_b, make_authorizer, component_ready):
    theirs = make_authorizer(platform=platform_b)
    ours = make_authorizer()
    # The default platform's contexts are the ones stored before platforms existed.
    assert (
        fieldcrypto.decrypt(ours.access_token_ciphertext, context=f"authorizer:{ours.appid}:access_token")
        == f"ACCESS_{ours.appid}"
    )
    assert authorizer_ctx(theirs.appid, "access_token", platform_b).startswith(f"authorizer:{B}:")
    with pytest.raises(fieldcrypto.FieldDecryptionError):
        fieldcrypto.decrypt(theirs.access_token_ciphertext, context=authorizer_ctx(theirs.appid, "access_token"))


def test_61004_on_one_platform_blocks_it_alone(platform_b, component_ready):
    platform_error_seen(IpNotWhitelisted(61004, "api unauthorized", path="x"), B)
    assert platform_blocked(B) and not platform_blocked()
    (alert,) = PlatformAlert.objects.filter(cleared_at__isnull=True)
    assert alert.component_appid == B and alert.code == "ip_not_whitelisted"
    # The same code on the default platform is a second, separate alert.
    platform_error_seen(IpNotWhitelisted(61004, "api unauthorized", path="x"))
    assert platform_blocked() and PlatformAlert.objects.filter(cleared_at__isnull=True).count() == 2
    assert alert_clear(code="ip_not_whitelisted", actor=Actor.system("test"), component_appid=B)
    assert not platform_blocked(B) and platform_blocked()


def test_a_merchant_hold_is_about_one_authorization(wechat, platform_b, make_authorizer, component_ready):
    theirs = make_authorizer(platform=platform_b)
    wechat.post(f"{WECHAT}/customservice/kfaccount/del", json={"errcode": 61004, "errmsg": "api unauthorized"})
    with pytest.raises(IpNotWhitelisted):
        with_authorizer_token(
            theirs.pk, lambda token: wechat_client(platform_b).kf_delete(access_token=token, kf_account="kf@x")
        )
    # The token the call used came through B: B's alert, not the default platform's.
    assert platform_blocked(B) and not platform_blocked()
    assert not merchant_held(theirs.appid, B)


def test_the_watchdog_watches_every_platform_apart(wechat, platform_b, component_ready, settings):
    wechat.post(START_PUSH, json={"errcode": 0, "errmsg": "ok"})
    ComponentCredential.objects.filter(component_appid=B).update(
        ticket_received_at=timezone.now() - timedelta(minutes=settings.VERIFY_TICKET_STALE_MINUTES + 1)
    )
    found = verify_tickets_watch()
    assert not found[settings.WECHAT_COMPONENT_APPID].stale
    assert found[B].stale and found[B].push_requested
    (call,) = _calls(wechat, START_PUSH)
    assert json.loads(call.request.body) == {"component_appid": B, "component_secret": PLATFORM_B["appsecret"]}
    (alert,) = PlatformAlert.objects.filter(cleared_at__isnull=True)
    assert (alert.code, alert.component_appid) == ("verify_ticket_stale", B)


def test_errors_name_a_platform_only_when_it_is_not_the_default(platform_b):
    error = error_for(61004, "api unauthorized", path="p")
    platform_error_seen(error)
    assert PlatformAlert.objects.get().component_appid == settings.WECHAT_COMPONENT_APPID
