"""POST /wechat/component/events/: verified, decrypted, recorded once, answered `success`."""

from __future__ import annotations

import time

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.models import Authorizer, ComponentCredential, ComponentEvent
from authorizers.revocation import authorizer_revoke
from authorizers.tokens import component_token_get
from tests.conftest import WECHAT
from tests.pushes import encrypted_push, push_xml, ticket_push

URL = "/wechat/component/events/"


def post(client, query: str, body: bytes):
    return client.generic("POST", f"{URL}?{query}", body, content_type="text/xml")


@pytest.mark.django_db
def test_ticket_push_is_stored_encrypted_and_answered_with_exactly_success(client, settings):
    response = post(client, *encrypted_push(ticket_push("ticket@@@first")))
    assert response.status_code == 200
    assert response.content == b"success"
    credential = ComponentCredential.objects.get(component_appid=settings.WECHAT_COMPONENT_APPID)
    assert credential.ticket_received_at is not None
    assert "ticket@@@first" not in credential.verify_ticket_ciphertext


@pytest.mark.django_db
def test_component_token_is_derived_from_the_newest_ticket(client, wechat):
    now = int(time.time())
    post(client, *encrypted_push(ticket_push("ticket@@@old", create_time=now - 60)))
    post(client, *encrypted_push(ticket_push("ticket@@@new", create_time=now)))
    post(client, *encrypted_push(ticket_push("ticket@@@late-duplicate-of-older", create_time=now - 30)))
    wechat.post(
        f"{WECHAT}/cgi-bin/component/api_component_token", json={"component_access_token": "CTOKEN", "expires_in": 7200}
    )
    assert component_token_get() == "CTOKEN"
    (call,) = wechat.calls
    assert b'"component_verify_ticket": "ticket@@@new"' in call.request.body or b"ticket@@@new" in call.request.body
    assert component_token_get() == "CTOKEN"  # cached: no second call
    assert len(wechat.calls) == 1


@pytest.mark.django_db
def test_duplicate_push_answers_success_and_is_recorded_once(client):
    query, body = encrypted_push(ticket_push("ticket@@@dup"))
    assert post(client, query, body).content == b"success"
    assert post(client, query, body).content == b"success"
    assert ComponentEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", ["signature", "timestamp_old", "timestamp_future", "nonce"])
def test_tampered_or_replayed_push_is_refused_and_nothing_stored(client, tamper):
    if tamper == "timestamp_old":
        query, body = encrypted_push(ticket_push(), timestamp=int(time.time()) - 3600)
    elif tamper == "timestamp_future":
        query, body = encrypted_push(ticket_push(), timestamp=int(time.time()) + 3600)
    else:
        query, body = encrypted_push(ticket_push())
        if tamper == "signature":
            query = query.replace("msg_signature=", "msg_signature=0")
        else:
            query = query.replace("nonce=1234567", "nonce=7654321")
    response = post(client, query, body)
    assert 400 <= response.status_code < 500
    assert ComponentEvent.objects.count() == 0
    assert not ComponentCredential.objects.exclude(verify_ticket_ciphertext="").exists()


@pytest.mark.django_db
def test_push_for_another_platform_appid_is_refused(client):
    other = "wx9999999999999999"
    response = post(client, *encrypted_push(ticket_push(), appid=other))
    assert response.status_code == 403
    assert ComponentEvent.objects.count() == 0


@pytest.mark.django_db
def test_push_encrypted_with_another_key_is_refused(client):
    response = post(client, *encrypted_push(ticket_push(), aes_key="B" * 43))
    assert 400 <= response.status_code < 500
    assert ComponentEvent.objects.count() == 0


@pytest.mark.django_db
def test_previous_aes_key_is_accepted_during_rotation(client, settings):
    old = settings.WECHAT_COMPONENT_AES_KEY
    settings.WECHAT_COMPONENT_PREVIOUS_AES_KEYS = [old]
    settings.WECHAT_COMPONENT_AES_KEY = "C" * 43
    response = post(client, *encrypted_push(ticket_push(), aes_key=old))
    assert response.content == b"success"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><Encrypt>",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><xml><Encrypt>&a;</Encrypt></xml>",
        b"<xml><AppId>x</AppId></xml>",
        b"<xml><Encrypt>!!!notbase64!!!</Encrypt></xml>",
    ],
)
def test_malformed_bodies_get_a_4xx_and_change_nothing(client, body):
    query, _ = encrypted_push(ticket_push())
    response = post(client, query, body)
    assert 400 <= response.status_code < 500
    assert ComponentEvent.objects.count() == 0


@pytest.mark.django_db
def test_oversized_body_is_refused(client, settings):
    query, _ = encrypted_push(ticket_push())
    response = post(
        client, query, b"<xml><Encrypt>" + b"A" * (settings.WECHAT_EVENT_MAX_BODY + 10) + b"</Encrypt></xml>"
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_missing_query_parameters_are_refused(client):
    _, body = encrypted_push(ticket_push())
    assert client.generic("POST", URL, body, content_type="text/xml").status_code == 400


@pytest.mark.django_db
def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


@pytest.mark.django_db
def test_decrypted_event_without_infotype_is_refused(client, settings):
    response = post(client, *encrypted_push(push_xml(AppId=settings.WECHAT_COMPONENT_APPID, CreateTime=1)))
    assert response.status_code == 400


def _authorized_push(appid: str, code: str, info_type: str = "authorized", create_time: int | None = None) -> bytes:
    from django.conf import settings

    now = create_time or int(time.time())
    return push_xml(
        AppId=settings.WECHAT_COMPONENT_APPID,
        CreateTime=now,
        InfoType=info_type,
        AuthorizerAppid=appid,
        AuthorizationCode=code,
        AuthorizationCodeExpiredTime=now + 600,
        PreAuthCode="preauthcode@@@x",
    )


def _fake_authorization(wechat, appid: str, funcs: list[int]) -> None:
    func_info = [{"funcscope_category": {"id": f}} for f in funcs]
    wechat.post(
        f"{WECHAT}/cgi-bin/component/api_query_auth",
        json={
            "authorization_info": {
                "authorizer_appid": appid,
                "authorizer_access_token": "AT_SECRET",
                "expires_in": 7200,
                "authorizer_refresh_token": "RT_SECRET",
                "func_info": func_info,
            }
        },
    )
    wechat.post(
        f"{WECHAT}/cgi-bin/component/api_get_authorizer_info",
        json={
            "authorizer_info": {
                "nick_name": "Shop",
                "service_type_info": {"id": 2},
                "verify_type_info": {"id": 0},
                "user_name": "gh_1",
                "alias": "shop",
                "account_status": 1,
            },
            "authorization_info": {"authorizer_appid": appid, "func_info": func_info},
        },
    )


@pytest.mark.django_db
def test_authorized_push_creates_the_merchant_and_a_duplicate_does_nothing(
    client, wechat, component_ready, django_capture_on_commit_callbacks
):
    _fake_authorization(wechat, "wxaaaaaaaaaaaaaaaa", [1, 6, 15])
    query, body = encrypted_push(_authorized_push("wxaaaaaaaaaaaaaaaa", "queryauthcode@@@1"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, query, body).content == b"success"
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, query, body).content == b"success"
    merchant = Authorizer.objects.get(appid="wxaaaaaaaaaaaaaaaa")
    assert (merchant.kind, merchant.func_ids, merchant.status) == ("service", [1, 6, 15], "active")
    assert sum("api_query_auth" in c.request.url for c in wechat.calls) == 1
    assert "RT_SECRET" not in merchant.refresh_token_ciphertext
    event = ComponentEvent.objects.get()
    assert event.state == "processed"
    assert "queryauthcode@@@1" not in str(event.fields) + event.authorization_code_ciphertext


@pytest.mark.django_db
def test_unauthorized_push_revokes_and_a_stale_authorized_push_cannot_undo_it(
    client, wechat, make_authorizer, component_ready, django_capture_on_commit_callbacks, settings
):
    merchant = make_authorizer(appid="wxbbbbbbbbbbbbbbbb")
    now = int(time.time())
    revoke = push_xml(
        AppId=settings.WECHAT_COMPONENT_APPID, CreateTime=now, InfoType="unauthorized", AuthorizerAppid=merchant.appid
    )
    assert post(client, *encrypted_push(revoke)).content == b"success"
    merchant.refresh_from_db()
    assert merchant.status == "revoked"
    assert merchant.refresh_token_ciphertext == "" and merchant.access_token_ciphertext == ""

    _fake_authorization(wechat, merchant.appid, [1])
    stale = _authorized_push(merchant.appid, "queryauthcode@@@old", create_time=now - 100)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, *encrypted_push(stale)).content == b"success"
    merchant.refresh_from_db()
    assert merchant.status == "revoked"


@pytest.mark.django_db
def test_unauthorized_push_after_a_revocation_seen_on_a_call_still_fences_older_pushes(
    client, wechat, make_authorizer, component_ready, django_capture_on_commit_callbacks, settings
):
    merchant = make_authorizer(appid="wxcccccccccccccccc")
    assert authorizer_revoke(appid=merchant.appid, actor=Actor.system("deletions"))  # a 61003 on a call
    assert not authorizer_revoke(appid=merchant.appid, actor=Actor.system("deletions"))  # noticed once only
    now = int(time.time())
    revoke = push_xml(
        AppId=settings.WECHAT_COMPONENT_APPID, CreateTime=now, InfoType="unauthorized", AuthorizerAppid=merchant.appid
    )
    assert post(client, *encrypted_push(revoke)).content == b"success"
    assert ComponentEvent.objects.get(info_type="unauthorized").state == "processed"
    actions = list(
        AuditEvent.objects.filter(authorizer_appid=merchant.appid).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["authorizer.revoked", "authorizer.unauthorized"]

    _fake_authorization(wechat, merchant.appid, [1])
    stale = _authorized_push(merchant.appid, "queryauthcode@@@old", create_time=now - 100)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, *encrypted_push(stale)).content == b"success"
    merchant.refresh_from_db()
    assert merchant.status == "revoked"
    assert (merchant.access_token_ciphertext, merchant.refresh_token_ciphertext) == ("", "")
