"""Component and authorizer tokens: refreshed ahead of expiry, single-flight, revocation noticed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.models import Authorizer, ComponentCredential
from authorizers.tokens import AuthorizerInactive, authorizer_token_get, component_token_get
from tests.conftest import WECHAT
from wechat.errors import NoVerifyTicket, RefreshTokenInvalid

TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_authorizer_token"


@pytest.mark.django_db
def test_fresh_token_is_served_from_the_row_without_calling_wechat(wechat, make_authorizer, component_ready):
    merchant = make_authorizer()
    assert authorizer_token_get(authorizer_id=merchant.pk) == f"ACCESS_{merchant.appid}"
    assert not wechat.calls


@pytest.mark.django_db
def test_token_inside_the_refresh_margin_is_refreshed_and_the_new_refresh_token_kept(
    wechat, make_authorizer, component_ready, settings
):
    merchant = make_authorizer(token_ttl=settings.WECHAT_TOKEN_REFRESH_MARGIN - 5)
    wechat.post(
        TOKEN_URL, json={"authorizer_access_token": "NEW_AT", "expires_in": 7200, "authorizer_refresh_token": "NEW_RT"}
    )
    assert authorizer_token_get(authorizer_id=merchant.pk) == "NEW_AT"
    (call,) = wechat.calls
    assert f"REFRESH_{merchant.appid}".encode() in call.request.body
    from authorizers.tokens import refresh_token_of

    merchant.refresh_from_db()
    assert refresh_token_of(merchant) == "NEW_RT"
    assert merchant.token_refresh_count == 1


@pytest.mark.django_db
def test_rejected_token_is_replaced_only_if_it_is_still_current(wechat, make_authorizer, component_ready):
    merchant = make_authorizer()
    # Someone else already refreshed: the rejected (old) token is not current, so no call is made.
    assert authorizer_token_get(authorizer_id=merchant.pk, rejected="SOME_OLD_TOKEN") == f"ACCESS_{merchant.appid}"
    assert not wechat.calls


@pytest.mark.django_db
def test_refresh_answered_with_61003_marks_the_merchant_revoked(wechat, make_authorizer, component_ready):
    merchant = make_authorizer(token_ttl=1)
    wechat.post(TOKEN_URL, json={"errcode": 61003, "errmsg": "component is not authorized by this account"})
    with pytest.raises(AuthorizerInactive):
        authorizer_token_get(authorizer_id=merchant.pk)
    merchant.refresh_from_db()
    assert merchant.status == "revoked"
    assert (merchant.access_token_ciphertext, merchant.refresh_token_ciphertext) == ("", "")
    (revoked,) = AuditEvent.objects.filter(action="authorizer.revoked", authorizer_appid=merchant.appid)
    assert (revoked.errcode, revoked.actor_label) == (61003, "token refresh")
    with pytest.raises(AuthorizerInactive):  # and no further calls for it
        authorizer_token_get(authorizer_id=merchant.pk)
    assert len(wechat.calls) == 1


INFO_URL = f"{WECHAT}/cgi-bin/component/api_get_authorizer_info"
LIST_URL = f"{WECHAT}/cgi-bin/component/api_get_authorizer_list"


@pytest.mark.django_db
def test_61023_reads_the_current_refresh_token_stores_it_and_retries_once(wechat, make_authorizer, component_ready):
    """WeChat staff's answer to 61023 (docs/wechat.md §6): not a revocation; re-read, store, retry."""
    from authorizers.tokens import refresh_token_of

    merchant = make_authorizer(token_ttl=1)
    wechat.post(TOKEN_URL, json={"errcode": 61023, "errmsg": "refresh_token is invalid"})
    wechat.post(
        TOKEN_URL, json={"authorizer_access_token": "AT2", "expires_in": 7200, "authorizer_refresh_token": "RT_NOW"}
    )
    wechat.post(
        INFO_URL,
        json={
            "authorizer_info": {"nick_name": "x"},
            "authorization_info": {"authorizer_appid": merchant.appid, "authorizer_refresh_token": "RT_NOW"},
        },
    )
    assert authorizer_token_get(authorizer_id=merchant.pk) == "AT2"
    bodies = [c.request.body for c in wechat.calls if c.request.url.startswith(TOKEN_URL)]
    assert f"REFRESH_{merchant.appid}".encode() in bodies[0] and b"RT_NOW" in bodies[1]
    merchant.refresh_from_db()
    assert (merchant.status, refresh_token_of(merchant)) == ("active", "RT_NOW")
    (recovered,) = AuditEvent.objects.filter(action="authorizer.refresh_token_recovered")
    assert recovered.authorizer_appid == merchant.appid
    assert not AuditEvent.objects.filter(action="authorizer.revoked").exists()


@pytest.mark.django_db
def test_61023_falls_back_to_the_authorizer_list_when_the_info_has_no_refresh_token(
    wechat, make_authorizer, component_ready
):
    merchant = make_authorizer(token_ttl=1)
    wechat.post(TOKEN_URL, json={"errcode": 61023, "errmsg": "refresh_token is invalid"})
    wechat.post(TOKEN_URL, json={"authorizer_access_token": "AT3", "expires_in": 7200})
    wechat.post(INFO_URL, json={"authorization_info": {"authorizer_appid": merchant.appid}})
    wechat.post(
        LIST_URL,
        json={
            "total_count": 2,
            "list": [{"authorizer_appid": "wxother"}, {"authorizer_appid": merchant.appid, "refresh_token": "RT_L"}],
        },
    )
    assert authorizer_token_get(authorizer_id=merchant.pk) == "AT3"
    assert b"RT_L" in [c for c in wechat.calls if c.request.url.startswith(TOKEN_URL)][1].request.body


@pytest.mark.django_db
def test_61023_for_a_merchant_wechat_no_longer_lists_is_a_revocation(wechat, make_authorizer, component_ready):
    merchant = make_authorizer(token_ttl=1)
    wechat.post(TOKEN_URL, json={"errcode": 61023, "errmsg": "refresh_token is invalid"})
    wechat.post(INFO_URL, json={"authorization_info": {"authorizer_appid": merchant.appid}})
    wechat.post(LIST_URL, json={"total_count": 0, "list": []})
    with pytest.raises(AuthorizerInactive):
        authorizer_token_get(authorizer_id=merchant.pk)
    merchant.refresh_from_db()
    assert merchant.status == "revoked"


@pytest.mark.django_db
def test_61023_twice_leaves_the_merchant_active_and_says_so(wechat, make_authorizer, component_ready):
    merchant = make_authorizer(token_ttl=1)
    wechat.post(TOKEN_URL, json={"errcode": 61023, "errmsg": "refresh_token is invalid"})
    wechat.post(
        INFO_URL, json={"authorization_info": {"authorizer_appid": merchant.appid, "authorizer_refresh_token": "RT"}}
    )
    with pytest.raises(RefreshTokenInvalid):
        authorizer_token_get(authorizer_id=merchant.pk)
    merchant.refresh_from_db()
    assert merchant.status == "active"
    assert len([c for c in wechat.calls if c.request.url.startswith(TOKEN_URL)]) == 2  # one retry, not more
    (failed,) = AuditEvent.objects.filter(action="authorizer.refresh_token_recovery_failed")
    assert failed.errcode == 61023


@pytest.mark.django_db
def test_no_ticket_means_no_component_token(wechat):
    with pytest.raises(NoVerifyTicket):
        component_token_get()
    assert not wechat.calls


@pytest.mark.django_db
def test_ticket_older_than_12_hours_is_not_used(wechat, component_ready):
    ComponentCredential.objects.update(
        ticket_created_at=timezone.now() - timedelta(hours=13),
        access_token_expires_at=timezone.now() - timedelta(seconds=1),
    )
    with pytest.raises(NoVerifyTicket):
        component_token_get()


@pytest.mark.django_db(transaction=True)
def test_many_threads_on_an_expired_token_cause_exactly_one_refresh(wechat, make_authorizer, component_ready):
    merchant = make_authorizer(token_ttl=1)
    Authorizer.objects.filter(pk=merchant.pk).update(access_token_expires_at=timezone.now() - timedelta(seconds=1))
    calls = []

    def slow_refresh(request):
        calls.append(request)
        time.sleep(0.2)  # a slow WeChat widens the window in which a race would show
        return 200, {}, '{"authorizer_access_token": "REFRESHED", "expires_in": 7200, "authorizer_refresh_token": "R"}'

    wechat.add_callback("POST", TOKEN_URL, callback=slow_refresh)
    results, failures = [], []
    barrier = threading.Barrier(20)

    def worker():
        try:
            barrier.wait()
            results.append(authorizer_token_get(authorizer_id=merchant.pk))
        except Exception as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert results == ["REFRESHED"] * 20
    assert len(calls) == 1


@pytest.mark.django_db
def test_a_wechat_that_refuses_the_stored_token_and_ticket_is_recovered_from_with_the_next_push(
    wechat, component_ready
):
    """A platform restarted against a WeChat that no longer knows its token or ticket (a new component
    environment; the demo's in-memory sandbox on a second `make run`): what WeChat refused is dropped,
    a push is asked for, nothing is called again until it arrives, and then the service works."""
    from authorizers.tokens import verify_ticket_store, with_component_token
    from wechat.errors import ComponentTicketInvalid

    preauth_url = f"{WECHAT}/cgi-bin/component/api_create_preauthcode"
    component_token_url = f"{WECHAT}/cgi-bin/component/api_component_token"
    start_push_url = f"{WECHAT}/cgi-bin/component/api_start_push_ticket"
    wechat.post(preauth_url, json={"errcode": 40001, "errmsg": "invalid credential"})
    wechat.post(preauth_url, json={"pre_auth_code": "PRE", "expires_in": 1800})
    wechat.post(component_token_url, json={"errcode": 61006, "errmsg": "component ticket is invalid"})
    wechat.post(component_token_url, json={"component_access_token": "NEW_COMPONENT", "expires_in": 7200})
    wechat.post(start_push_url, json={"errcode": 0, "errmsg": "ok"})

    def preauth():
        from authorizers.client import wechat_client

        return with_component_token(lambda token: wechat_client().create_preauthcode(component_token=token))

    with pytest.raises(ComponentTicketInvalid):
        preauth()
    credential = ComponentCredential.objects.get()
    assert (credential.access_token_ciphertext, credential.verify_ticket_ciphertext) == ("", "")
    assert [c.request.url.split("?")[0] for c in wechat.calls] == [preauth_url, component_token_url, start_push_url]

    # Until the next push: no call with what WeChat refused, no call at all.
    with pytest.raises(NoVerifyTicket):
        preauth()
    assert len(wechat.calls) == 3

    assert verify_ticket_store(ticket="ticket@@@pushed", created_at=timezone.now())
    assert preauth()["pre_auth_code"] == "PRE"
    refresh, call = wechat.calls[3], wechat.calls[4]
    assert b"ticket@@@pushed" in refresh.request.body
    assert "NEW_COMPONENT" in call.request.url
    assert AuditEvent.objects.filter(action="wechat.component_token_called", errcode=61006).count() == 1
