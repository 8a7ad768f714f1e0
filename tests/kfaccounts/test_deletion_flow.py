"""The deletion state machine, in-process, with WeChat faked at the HTTP edge."""

from __future__ import annotations

import json

import pytest

from kfaccounts.models import DeletionRequest
from tests.conftest import WECHAT

DEL_URL = f"{WECHAT}/customservice/kfaccount/del"
TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_authorizer_token"


def _request(client, account: str = "kf1@shop") -> dict:
    response = client.post("/api/v1/deletions/", {"kf_account": account}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.django_db
def test_merchant_deletes_an_account_and_wechat_sees_one_post_with_its_token(
    wechat, make_authorizer, api_client_for, component_ready, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    with django_capture_on_commit_callbacks(execute=True):
        body = _request(api_client_for(merchant))
    deletion = DeletionRequest.objects.get(pk=body["id"])
    assert (deletion.status, deletion.errcode, deletion.attempts) == ("succeeded", 0, 1)
    (call,) = wechat.calls
    assert call.request.method == "POST"
    assert f"access_token=ACCESS_{merchant.appid}" in call.request.url
    assert json.loads(call.request.body) == {"kf_account": "kf1@shop"}


@pytest.mark.django_db
def test_expired_token_is_refreshed_once_and_the_call_retried(
    wechat, make_authorizer, api_client_for, component_ready, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": "access_token expired rid: 1-2-3"})
    wechat.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    wechat.post(
        TOKEN_URL, json={"authorizer_access_token": "NEW", "expires_in": 7200, "authorizer_refresh_token": "REFRESH2"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        body = _request(api_client_for(merchant))
    assert DeletionRequest.objects.get(pk=body["id"]).status == "succeeded"
    urls = [c.request.url for c in wechat.calls]
    assert sum("api_authorizer_token" in u for u in urls) == 1
    assert "access_token=NEW" in urls[-1]


@pytest.mark.django_db
def test_deletion_pending_when_the_merchant_revokes_fails_authorization_revoked_without_a_call(
    wechat, make_authorizer, api_client_for, component_ready, django_capture_on_commit_callbacks
):
    from authorizers.models import Authorizer
    from kfaccounts.tasks import run_deletions

    merchant = make_authorizer()
    with django_capture_on_commit_callbacks(execute=False):  # accepted, task not run yet
        body = _request(api_client_for(merchant))
    Authorizer.objects.filter(pk=merchant.pk).update(status="revoked")
    run_deletions(merchant.pk)
    deletion = DeletionRequest.objects.get(pk=body["id"])
    assert (deletion.status, deletion.reason, deletion.attempts) == ("failed", "authorization_revoked", 0)
    assert not wechat.calls
