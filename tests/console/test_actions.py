"""Every console action goes through a service and leaves an audit event naming the staff user.

WeChat is faked at the HTTP edge (`responses`); eager Celery runs what an action sends.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from authorizers.models import ApiKey
from kfaccounts.models import DeletionRequest, KfAccount
from tests.kfaccounts.conftest import DEL_URL, INFO_URL, LIST_URL, OK, TOKEN_URL

pytestmark = pytest.mark.django_db

MERCHANTS = "admin:authorizers_authorizer_changelist"
KF_ACCOUNTS = "admin:kfaccounts_kfaccount_changelist"
DELETIONS = "admin:kfaccounts_deletionrequest_changelist"
API_KEYS = "admin:authorizers_apikey_changelist"


def _run(client, changelist: str, action: str, pks: list[int], capture, **extra):
    with capture(execute=True):
        response = client.post(
            reverse(changelist), {"action": action, "index": 0, "_selected_action": pks, **extra}, follow=True
        )
    assert response.status_code == 200
    return response


def _by_staff(username: str) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(actor_kind="staff", actor_label=username)
        .order_by("id")
        .values_list("action", "outcome")
    )


def _info(appid: str, func_ids: list[int]) -> dict:
    return {
        "authorizer_info": {
            "nick_name": "Tea House 茶馆",
            "service_type_info": {"id": 2},
            "verify_type_info": {"id": 0},
            "account_status": 1,
        },
        "authorization_info": {
            "authorizer_appid": appid,
            "func_info": [{"funcscope_category": {"id": i}} for i in func_ids],
        },
    }


def test_refresh_token_is_audited_with_the_staff_user(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.post(TOKEN_URL, json={"authorizer_access_token": "NEW_TOKEN", "expires_in": 7200})
    response = _run(operator_client, MERCHANTS, "refresh_token", [shop.pk], django_capture_on_commit_callbacks)
    assert _by_staff("ops_li") == [("authorizer.token_refresh_requested", "ok")]
    assert "token refreshed, expires" in response.content.decode()


def test_a_failed_refresh_is_audited_and_the_message_names_the_merchant_and_reason(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.post(TOKEN_URL, json={"errcode": -1, "errmsg": "system error"})
    response = _run(operator_client, MERCHANTS, "refresh_token", [shop.pk], django_capture_on_commit_callbacks)
    assert _by_staff("ops_li") == [("authorizer.token_refresh_requested", "upstream_unavailable")]
    html = response.content.decode()
    assert f"Tea House 茶馆 ({shop.appid}): WeChat answered errcode -1 (system error)" in html


def test_reread_permissions_is_audited_with_the_staff_user(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.post(INFO_URL, json=_info(shop.appid, [1, 6]))
    _run(operator_client, MERCHANTS, "reread_permissions", [shop.pk], django_capture_on_commit_callbacks)
    assert _by_staff("ops_li") == [("authorizer.info_refreshed", "ok")]
    shop.refresh_from_db()
    assert shop.func_ids == [1, 6]


def test_sync_kf_accounts_is_audited_with_the_staff_user(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.get(LIST_URL, json={"kf_list": [{"kf_account": "kf1@teahouse"}, {"kf_account": "kf9@teahouse"}]})
    _run(operator_client, MERCHANTS, "sync_kf_accounts", [shop.pk], django_capture_on_commit_callbacks)
    assert _by_staff("ops_li") == [("kf_list.synced", "ok")]
    assert KfAccount.objects.filter(authorizer=shop, gone_at__isnull=True).count() == 2


def test_issue_api_key_shows_it_once_uncached_and_audits_the_superuser(
    superuser_client, shop, django_capture_on_commit_callbacks
):
    response = _run(
        superuser_client, MERCHANTS, "issue_api_key", [shop.pk], django_capture_on_commit_callbacks, confirm="yes"
    )
    html = response.content.decode()
    (key,) = re.findall(r"kfp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", html)
    assert "no-store" in response["Cache-Control"]
    assert _by_staff("root_zhang") == [("api_key.issued", "ok")]
    issued = ApiKey.objects.get(prefix=key.split("_")[1])
    assert (
        key not in superuser_client.get(reverse("admin:authorizers_apikey_change", args=[issued.pk])).content.decode()
    )
    # The key works against the merchant API.
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api.get("/api/v1/authorizer/").status_code == 200


def test_revoke_api_key_is_audited_with_the_superuser(superuser_client, shop, django_capture_on_commit_callbacks):
    key = shop.api_keys.get()
    _run(superuser_client, API_KEYS, "revoke", [key.pk], django_capture_on_commit_callbacks, confirm="yes")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert _by_staff("root_zhang") == [("api_key.revoked", "ok")]


def test_deactivate_keeps_history_revokes_keys_cancels_pending_and_is_audited(
    operator_client, shop, django_capture_on_commit_callbacks
):
    deletions = shop.deletions.count()
    _run(operator_client, MERCHANTS, "deactivate", [shop.pk], django_capture_on_commit_callbacks, confirm="yes")
    shop.refresh_from_db()
    assert shop.status == "deactivated"
    assert shop.access_token_ciphertext == "" and shop.refresh_token_ciphertext == ""
    assert shop.deletions.count() == deletions and shop.kf_accounts.count() == 3
    assert not shop.api_keys.filter(revoked_at__isnull=True).exists()
    assert not shop.deletions.filter(status="pending").exists()
    assert _by_staff("ops_li") == [
        ("api_key.revoked", "ok"),
        ("deletion.cancelled", "cancelled"),
        ("authorizer.deactivated", "deactivated"),
    ]


def test_delete_selected_asks_first_then_creates_deletions_through_the_api_service(
    operator_client, shop, make_authorizer, wechat, django_capture_on_commit_callbacks
):
    ineligible = make_authorizer(nickname="No Perms Shop", func_ids=[2, 3])
    KfAccount.objects.create(authorizer=ineligible, kf_account="kf1@noperms", last_seen_at=shop.created_at)
    wechat.post(DEL_URL, json=OK)
    selected = list(KfAccount.objects.values_list("pk", flat=True))  # 2 present, 1 gone, 1 of an ineligible shop

    confirm = _run(
        operator_client, KF_ACCOUNTS, "delete_selected_kf_accounts", selected, django_capture_on_commit_callbacks
    )
    html = confirm.content.decode()
    assert "2 of the 4 selected kf accounts will be deleted on WeChat." in html
    assert "No Perms Shop" in html and "none of permission sets 1, 6, 19, 100, 101 is granted" in html
    assert "already gone from WeChat" in html and "kf3@teahouse" in html
    assert "WeChat removes the customer-service account for good" in html
    assert DeletionRequest.objects.filter(kf_account__startswith="kf").count() == 0
    assert len(wechat.calls) == 0

    done = _run(
        operator_client,
        KF_ACCOUNTS,
        "delete_selected_kf_accounts",
        selected,
        django_capture_on_commit_callbacks,
        confirm="yes",
    )
    assert "2 deletions requested" in done.content.decode()
    created = DeletionRequest.objects.filter(kf_account__in=["kf1@teahouse", "kf2@teahouse"])
    assert sorted(created.values_list("status", flat=True)) == ["succeeded", "succeeded"]
    assert {d.requested_by_label for d in created} == {"ops_li"}
    assert _by_staff("ops_li") == [("deletion.requested", "pending"), ("deletion.requested", "pending")]
    assert len(wechat.calls) == 2


def test_retry_failed_from_the_deletions_page_is_audited_and_succeeds(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    failed = shop.deletions.get(status="failed")
    _run(operator_client, DELETIONS, "retry_failed", [failed.pk], django_capture_on_commit_callbacks, confirm="yes")
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("succeeded", 2)
    assert _by_staff("ops_li") == [("deletion.retry_requested", "pending")]


def test_cancel_pending_is_audited_and_a_message_names_what_could_not_be_cancelled(
    operator_client, shop, django_capture_on_commit_callbacks
):
    pks = list(shop.deletions.values_list("pk", flat=True))
    response = _run(operator_client, DELETIONS, "cancel_pending", pks, django_capture_on_commit_callbacks)
    assert _by_staff("ops_li") == [("deletion.cancelled", "cancelled")]
    html = response.content.decode()
    assert (
        f"Tea House 茶馆 ({shop.appid}) old1@teahouse: deletion #{pks[-1]} not cancelled: it is Failed; "
        "only a pending deletion can be cancelled"
    ) in html


def test_an_action_button_on_a_detail_page_comes_back_to_that_page(
    operator_client, shop, wechat, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    failed = shop.deletions.get(status="failed")
    page = reverse("admin:kfaccounts_deletionrequest_change", args=[failed.pk])
    assert 'data-action="retry_failed"' in operator_client.get(page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse(DELETIONS),
            {
                "action": "retry_failed",
                "index": 0,
                "_selected_action": [failed.pk],
                "_console_next": page,
                "confirm": "yes",
            },
        )
    assert response.status_code == 302 and response["Location"] == page
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = operator_client.post(
            reverse(DELETIONS),
            {
                "action": "cancel_pending",
                "index": 0,
                "_selected_action": [failed.pk],
                "_console_next": "https://evil.example/",
            },
        )
    assert elsewhere["Location"] != "https://evil.example/"
