"""Merchant A never sees or touches merchant B's objects; unauthenticated callers get 401."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from kfaccounts.models import DeletionRequest, KfAccount
from tests.conftest import assert_api_key_401
from tests.kfaccounts.conftest import DEL_URL, OK

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_merchants(make_authorizer, component_ready, api_client_for):
    a, b = make_authorizer(), make_authorizer()
    now = timezone.now()
    for merchant, name in ((a, "kfa@shopa"), (b, "kfb@shopb")):
        KfAccount.objects.create(authorizer=merchant, kf_account=name, last_seen_at=now)
    b_deletion = DeletionRequest.objects.create(authorizer=b, kf_account="kfb@shopb", requested_by_kind="system")
    return a, b, api_client_for(a), api_client_for(b), b_deletion


def test_a_merchant_cannot_read_anothers_deletion(two_merchants):
    a, b, client_a, client_b, b_deletion = two_merchants
    response = client_a.get(f"/api/v1/deletions/{b_deletion.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client_b.get(f"/api/v1/deletions/{b_deletion.pk}/").status_code == 200


def test_a_merchant_lists_only_its_own_deletions_and_accounts(two_merchants):
    a, b, client_a, client_b, b_deletion = two_merchants
    assert client_a.get("/api/v1/deletions/").json()["results"] == []
    assert [d["id"] for d in client_b.get("/api/v1/deletions/").json()["results"]] == [b_deletion.pk]
    assert [k["kf_account"] for k in client_a.get("/api/v1/kf-accounts/?include_gone=true").json()["results"]] == [
        "kfa@shopa"
    ]
    assert [k["kf_account"] for k in client_b.get("/api/v1/kf-accounts/").json()["results"]] == ["kfb@shopb"]


def test_deleting_another_merchants_account_name_only_ever_acts_for_the_caller(
    wechat, two_merchants, django_capture_on_commit_callbacks
):
    a, b, client_a, client_b, b_deletion = two_merchants
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):
        by_name = client_a.delete("/api/v1/kf-accounts/kfb@shopb/")
    assert by_name.status_code == 202
    created = DeletionRequest.objects.get(pk=by_name.json()["id"])
    assert created.authorizer_id == a.pk and created.pk != b_deletion.pk
    (call,) = wechat.calls
    assert call.request.url.endswith(f"access_token=ACCESS_{a.appid}")
    b_deletion.refresh_from_db()
    assert b_deletion.status == "pending"
    assert KfAccount.objects.get(kf_account="kfb@shopb").gone_at is None


def test_the_authorizer_endpoint_shows_only_the_callers_account(two_merchants):
    a, b, client_a, client_b, _ = two_merchants
    assert client_a.get("/api/v1/authorizer/").json()["appid"] == a.appid
    assert client_b.get("/api/v1/authorizer/").json()["appid"] == b.appid


def test_ping_checks_the_key_and_names_only_the_callers_account(two_merchants):
    a, b, client_a, client_b, _ = two_merchants
    assert client_a.get("/api/v1/ping/").json() == {"ok": True, "appid": a.appid}
    assert client_b.get("/api/v1/ping/").json() == {"ok": True, "appid": b.appid}
    assert_api_key_401(APIClient().get("/api/v1/ping/"))


def test_a_sync_request_only_syncs_the_callers_account(wechat, two_merchants, django_capture_on_commit_callbacks):
    a, b, client_a, client_b, _ = two_merchants
    wechat.get(
        f"{DEL_URL.rsplit('/customservice', 1)[0]}/cgi-bin/customservice/getkflist",
        json={"kf_list": [{"kf_account": "new@shopa", "kf_id": 1}]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client_a.post("/api/v1/kf-accounts/sync/").status_code == 202
    (call,) = wechat.calls
    assert call.request.url.endswith(f"access_token=ACCESS_{a.appid}")
    assert set(KfAccount.objects.filter(authorizer=b).values_list("kf_account", flat=True)) == {"kfb@shopb"}
