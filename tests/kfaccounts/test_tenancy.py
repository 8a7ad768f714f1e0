"""Merchant A never sees or touches merchant B's objects; unauthenticated callers get 401."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.services import Actor
from authorizers.api_keys import api_key_issue, api_key_revoke
from kfaccounts.models import DeletionRequest, KfAccount
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
    _assert_401(APIClient().get("/api/v1/ping/"))


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


URLS = [
    ("get", "/api/v1/authorizer/"),
    ("get", "/api/v1/deletions/"),
    ("post", "/api/v1/deletions/"),
    ("get", "/api/v1/deletions/1/"),
    ("get", "/api/v1/kf-accounts/"),
    ("post", "/api/v1/kf-accounts/sync/"),
    ("delete", "/api/v1/kf-accounts/kf1@shop/"),
]


def _assert_401(response) -> None:
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] in ("not_authenticated", "authentication_failed") and error["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(("method", "url"), URLS)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Api-Key ",
        "Api-Key garbage",
        "Api-Key kfp_nothere_secret",
        "Api-Key kfp__",
        "Api-Key kfp_\u00e9\u00e9_x",
        "Bearer kfp_abc_def",
        "Api-Key kfp_" + "x" * 5000,
    ],
)
def test_missing_or_garbage_api_key_is_401_with_the_error_envelope(wechat, make_authorizer, method, url, header):
    make_authorizer()
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    _assert_401(getattr(client, method)(url, {"kf_account": "kf1@shop"} if method == "post" else None, format="json"))
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


def test_a_right_prefix_with_a_wrong_secret_is_401(make_authorizer):
    _, key = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-2]}xx")
    _assert_401(client.get("/api/v1/deletions/"))


@pytest.mark.parametrize(("method", "url"), URLS)
def test_a_revoked_api_key_is_401(wechat, make_authorizer, method, url):
    merchant = make_authorizer()
    api_key, key = api_key_issue(authorizer=merchant, actor=Actor.system("test"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/deletions/").status_code == 200
    api_key_revoke(api_key=api_key, actor=Actor.system("test"))
    _assert_401(getattr(client, method)(url, {"kf_account": "kf1@shop"} if method == "post" else None, format="json"))
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0
