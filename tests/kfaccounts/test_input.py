"""What the API accepts: kf_account validation, bulk bounds, malformed bodies — never a 500."""

from __future__ import annotations

import pytest

from kfaccounts.models import DeletionRequest
from kfaccounts.validation import MalformedKfAccount, kf_account_check
from tests.kfaccounts.conftest import DEL_URL, OK, body_of, del_calls

pytestmark = pytest.mark.django_db

INVALID = [
    pytest.param("nobody", id="no-at"),
    pytest.param("abcdefghijk@shop", id="prefix-11"),
    pytest.param("kf-1@shop", id="prefix-dash"),
    pytest.param("kf.1@shop", id="prefix-dot"),
    pytest.param("kf1@" + "x" * 31, id="suffix-31"),
    pytest.param("", id="empty"),
    pytest.param("@shop", id="empty-prefix"),
    pytest.param("kf1@", id="empty-suffix"),
    pytest.param("a@b@c", id="two-ats"),
    pytest.param("客服@shop", id="unicode-prefix"),
    pytest.param("kf1@商店", id="unicode-suffix"),
    pytest.param("ｋｆ1@shop", id="fullwidth"),
    pytest.param("kf١@shop", id="arabic-digit"),
    pytest.param(" kf1@shop", id="leading-space"),
    pytest.param("kf1@shop ", id="trailing-space"),
    pytest.param("kf1@shop\n", id="trailing-newline"),
    pytest.param("kf 1@shop", id="inner-space"),
    pytest.param("kf1@sh\top", id="tab"),
    pytest.param("kf1@shop\x00", id="nul"),
    pytest.param("kf1@shop/x", id="slash"),
    pytest.param("kf1@shop?access_token=x", id="query"),
    pytest.param(123, id="int"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(["kf1@shop"], id="list"),
    pytest.param({"kf_account": "kf1@shop"}, id="object"),
    pytest.param("k" * 5000 + "@shop", id="huge"),
]

VALID = [
    pytest.param("a@b", id="shortest"),
    pytest.param("abcdefghij@" + "x" * 30, id="longest"),
    pytest.param("A_1@wx-id_9", id="mixed"),
    pytest.param("__________@-", id="underscores-and-dash"),
    pytest.param("0123456789@gh_0123456789ab", id="digits-and-gh-id"),
]


@pytest.mark.parametrize("value", INVALID)
def test_invalid_kf_account_is_refused_with_400_and_nothing_is_stored_or_sent(
    wechat, merchant, client, request_deletion, value
):
    wechat.post(DEL_URL, json=OK)
    error = request_deletion(client, value, expect=400)["error"]
    assert error["code"] == "invalid_input"
    assert error["message"]
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


@pytest.mark.parametrize("value", INVALID)
def test_one_invalid_kf_account_refuses_the_whole_bulk_request(
    wechat, merchant, client, django_capture_on_commit_callbacks, value
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/deletions/", {"kf_accounts": ["kf1@shop", value]}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_input"
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


@pytest.mark.parametrize("value", VALID)
def test_valid_edge_kf_accounts_are_accepted_and_sent_verbatim(wechat, merchant, client, request_deletion, value):
    wechat.post(DEL_URL, json=OK)
    body = request_deletion(client, value)
    assert body["kf_account"] == value
    assert DeletionRequest.objects.get(pk=body["id"]).status == "succeeded"
    (call,) = del_calls(wechat)
    assert body_of(call) == {"kf_account": value}


@pytest.mark.parametrize(
    "value",
    [
        v
        for v in INVALID
        if isinstance(v.values[0], str) and "/" not in v.values[0] and v.values[0] and "\x00" not in v.values[0]
    ],
)
def test_delete_by_url_refuses_invalid_names(wechat, merchant, client, value):
    from urllib.parse import quote

    response = client.delete(f"/api/v1/kf-accounts/{quote(value, safe='@')}/")
    assert response.status_code in (400, 404), response.content
    assert response.json()["error"]["code"] in ("invalid_input", "not_found")
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


def test_delete_by_url_accepts_a_percent_encoded_at(wechat, merchant, client, django_capture_on_commit_callbacks):
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete("/api/v1/kf-accounts/kf1%40shop/")
    assert response.status_code == 202, response.content
    assert response.json()["kf_account"] == "kf1@shop"
    assert body_of(del_calls(wechat)[0]) == {"kf_account": "kf1@shop"}


def test_bulk_of_1001_accounts_is_refused(wechat, merchant, client):
    accounts = [f"kf{i}@shop" for i in range(1001)]
    response = client.post("/api/v1/deletions/", {"kf_accounts": accounts}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"kf_account": "kf1@shop", "kf_accounts": ["kf2@shop"]}, id="both"),
        pytest.param({}, id="neither"),
        pytest.param({"kf_accounts": []}, id="empty-list"),
        pytest.param({"kf_accounts": "kf1@shop"}, id="list-is-a-string"),
        pytest.param({"kf_accounts": {"a": "kf1@shop"}}, id="list-is-an-object"),
        pytest.param({"kf_accounts": None}, id="list-is-null"),
        pytest.param({"kf_accounts": [["kf1@shop"]]}, id="nested-list"),
        pytest.param({"kf_accounts": [{"kf_account": "kf1@shop"}]}, id="list-of-objects"),
        pytest.param(["kf1@shop"], id="body-is-a-list"),
        pytest.param("kf1@shop", id="body-is-a-string"),
        pytest.param(42, id="body-is-a-number"),
        pytest.param(None, id="body-is-null"),
    ],
)
def test_malformed_bodies_are_refused_with_400(wechat, merchant, client, payload):
    response = client.post("/api/v1/deletions/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_input"
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


@pytest.mark.parametrize("raw", [b'{"kf_account": "kf1@shop"', b"not json", b"\xff\xfe", b'{"kf_account": NaN}', b""])
def test_unparseable_json_is_a_400_not_a_500(wechat, merchant, client, raw):
    response = client.generic("POST", "/api/v1/deletions/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("malformed_request", "invalid_input")
    assert not DeletionRequest.objects.exists()


def test_a_form_body_is_refused_as_unsupported(merchant, client):
    response = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"})  # multipart
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_key_out_of_bounds_is_refused(merchant, client, key):
    response = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert not DeletionRequest.objects.exists()


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "cursor=garbage", "page_size=abc", "page_size=-1", "page_size=0", "status=", "include_gone=maybe"],
)
def test_odd_list_parameters_never_cause_a_500(merchant, client, query):
    for url in ("/api/v1/deletions/", "/api/v1/kf-accounts/"):
        response = client.get(f"{url}?{query}")
        assert response.status_code in (200, 400, 404), (url, query, response.content)
        if response.status_code != 200:
            assert set(response.json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize("value", ["a@b", "abcdefghij@" + "x" * 30])
def test_kf_account_check_returns_valid_values(value):
    assert kf_account_check(value) == value


@pytest.mark.parametrize("value", INVALID)
def test_kf_account_check_refuses_invalid_values(value):
    with pytest.raises(MalformedKfAccount):
        kf_account_check(value)
