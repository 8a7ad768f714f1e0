"""The KfAccount mirror: getkflist read leniently, upserted, accounts gone upstream marked gone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.policy import NotEligible
from kfaccounts import services
from kfaccounts.models import KfAccount
from tests.kfaccounts.conftest import DEL_URL, LIST_URL, OK, calls_to
from wechat import errors

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def _sync(merchant, *kf_list: dict) -> services.SyncResult:
    return services.kf_accounts_sync(authorizer=merchant, actor=ACTOR)


def _mirror(merchant) -> dict[str, KfAccount]:
    return {row.kf_account: row for row in KfAccount.objects.filter(authorizer=merchant)}


def test_getkflist_with_string_and_int_fields_is_read_leniently(wechat, merchant):
    wechat.get(
        LIST_URL,
        json={
            "kf_list": [
                {
                    "kf_account": "test1@test",
                    "kf_headimgurl": "http://mmbiz.qpic.cn/x/0",
                    "kf_id": "1001",
                    "kf_nick": "ntest1",
                    "kf_wx": "kfwx1",
                },
                {
                    "kf_account": "test3@test",
                    "kf_id": 1003,
                    "kf_nick": "ntest3",
                    "invite_wx": "kfwx3",
                    "invite_expire_time": 123456789,
                    "invite_status": "waiting",
                },
                {
                    "kf_account": "test4@test",
                    "kf_id": "1004",
                    "invite_expire_time": "1700000000",
                    "invite_status": "expired",
                },
                {"kf_nick": "no account: skipped"},
                "not an object",
            ]
        },
    )
    result = _sync(merchant)
    assert result == services.SyncResult(present=3, added=3, gone=0)
    rows = _mirror(merchant)
    assert set(rows) == {"test1@test", "test3@test", "test4@test"}
    assert (rows["test1@test"].kf_id, rows["test1@test"].kf_wx, rows["test1@test"].invite_expire_time) == (
        "1001",
        "kfwx1",
        None,
    )
    assert rows["test3@test"].kf_id == "1003"
    assert rows["test3@test"].invite_expire_time == datetime.fromtimestamp(123456789, tz=UTC)
    assert rows["test4@test"].invite_expire_time == datetime.fromtimestamp(1700000000, tz=UTC)
    (call,) = wechat.calls
    assert call.request.method == "GET"
    assert call.request.url == f"{LIST_URL}?access_token=ACCESS_{merchant.appid}"
    assert AuditEvent.objects.filter(action="kf_list.synced", authorizer_appid=merchant.appid).count() == 1


def test_sync_upserts_marks_missing_accounts_gone_and_clears_it_when_they_return(wechat, merchant):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop", "kf_nick": "A"}, {"kf_account": "b@shop"}]})
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop", "kf_nick": "A2", "kf_id": 7}]})
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop", "kf_nick": "A2"}, {"kf_account": "b@shop"}]})
    assert _sync(merchant) == services.SyncResult(present=2, added=2, gone=0)
    first_ids = {k: row.pk for k, row in _mirror(merchant).items()}

    assert _sync(merchant) == services.SyncResult(present=1, added=0, gone=1)
    rows = _mirror(merchant)
    assert {k: row.pk for k, row in rows.items()} == first_ids  # updated in place, not re-created
    assert (rows["a@shop"].kf_nick, rows["a@shop"].kf_id, rows["a@shop"].gone_at) == ("A2", "7", None)
    assert rows["b@shop"].gone_at is not None

    assert _sync(merchant) == services.SyncResult(present=2, added=0, gone=0)
    rows = _mirror(merchant)
    assert rows["b@shop"].gone_at is None
    assert rows["b@shop"].last_seen_at >= rows["b@shop"].first_seen_at
    assert len(wechat.calls) == 3


def test_an_answer_without_kf_list_does_not_empty_the_mirror(wechat, merchant):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop"}]})
    wechat.get(LIST_URL, json={"errcode": 0, "errmsg": "ok"})
    _sync(merchant)
    with pytest.raises(errors.MalformedResponse):
        _sync(merchant)
    assert _mirror(merchant)["a@shop"].gone_at is None


@pytest.mark.parametrize(
    "expire", [99_999_999_999_999, -5, "soon", 10**30], ids=["far-future", "negative", "text", "huge"]
)
def test_an_unreadable_invite_expire_time_is_kept_as_unknown(wechat, merchant, expire):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop", "invite_expire_time": expire}]})
    _sync(merchant)
    assert _mirror(merchant)["a@shop"].invite_expire_time is None


def test_an_overlong_account_name_from_upstream_is_skipped_not_fatal(wechat, merchant):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "x" * 65 + "@shop"}, {"kf_account": "a@shop"}]})
    assert _sync(merchant).present == 1
    assert set(_mirror(merchant)) == {"a@shop"}


def test_a_successful_deletion_marks_the_mirrored_account_gone(wechat, merchant, client, request_deletion):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "kf1@shop"}, {"kf_account": "kf2@shop"}]})
    wechat.post(DEL_URL, json=OK)
    _sync(merchant)
    request_deletion(client, "kf1@shop")
    rows = _mirror(merchant)
    assert rows["kf1@shop"].gone_at is not None and rows["kf2@shop"].gone_at is None
    listed = client.get("/api/v1/kf-accounts/").json()["results"]
    assert [(r["kf_account"], r["present"]) for r in listed] == [("kf2@shop", True)]
    with_gone = client.get("/api/v1/kf-accounts/?include_gone=true").json()["results"]
    assert [(r["kf_account"], r["present"]) for r in with_gone] == [("kf1@shop", False), ("kf2@shop", True)]


def test_sync_endpoint_answers_202_and_syncs_for_an_eligible_merchant(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "a@shop", "kf_id": 1}]})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/kf-accounts/sync/")
    assert response.status_code == 202
    assert response.json() == {"status": "queued"}
    assert set(_mirror(merchant)) == {"a@shop"}
    assert len(calls_to(wechat, LIST_URL)) == 1
    synced = AuditEvent.objects.get(action="kf_list.synced")
    assert (synced.actor_kind, synced.actor_id) == ("api_key", str(merchant.api_keys.get().pk))


def test_sync_endpoint_refuses_an_ineligible_merchant_with_403(
    wechat, make_authorizer, component_ready, api_client_for, django_capture_on_commit_callbacks
):
    merchant = make_authorizer(verify_type_id=-1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client_for(merchant).post("/api/v1/kf-accounts/sync/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_eligible"
    assert callbacks == []
    assert len(wechat.calls) == 0
    assert not KfAccount.objects.exists()


def test_sync_service_refuses_an_ineligible_merchant_without_calling_wechat(wechat, make_authorizer):
    merchant = make_authorizer(func_ids=[])
    with pytest.raises(NotEligible):
        _sync(merchant)
    assert len(wechat.calls) == 0


def test_the_sync_task_gives_up_quietly_when_the_merchant_is_no_longer_eligible(wechat, make_authorizer):
    from kfaccounts.tasks import sync_kf_accounts

    merchant = make_authorizer(status="revoked")
    sync_kf_accounts.delay(merchant.pk)  # eager: an exception here would propagate
    assert len(wechat.calls) == 0
    assert AuditEvent.objects.filter(action="kf_list.sync_refused", authorizer_appid=merchant.appid).count() == 1


def test_a_getkflist_failure_is_audited_with_errcode_and_rid(wechat, merchant):
    wechat.get(LIST_URL, json={"errcode": 48001, "errmsg": "api unauthorized rid: 99-aa"})
    with pytest.raises(errors.PermissionNotGranted):
        _sync(merchant)
    event = AuditEvent.objects.get(action="wechat.kf_list_called")
    assert (event.outcome, event.errcode, event.rid, event.authorizer_appid) == (
        "permission_denied",
        48001,
        "99-aa",
        merchant.appid,
    )
