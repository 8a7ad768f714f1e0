"""The design's errcode table, end to end in-process: API → on-commit dispatch → eager task → WeChat (faked)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.models import Authorizer
from kfaccounts import services
from kfaccounts.models import DeletionRequest
from kfaccounts.tasks import run_deletions
from tests.kfaccounts.conftest import DEL_URL, INFO_URL, OK, TOKEN_URL, body_of, calls_to, del_calls

pytestmark = pytest.mark.django_db

SHANGHAI = services.QUOTA_TIMEZONE


def _deletion(body: dict) -> DeletionRequest:
    return DeletionRequest.objects.get(pk=body["id"])


# --- definitive answers ------------------------------------------------------------------------


def test_errcode_0_succeeds_after_one_post_with_the_merchants_token(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json=OK)
    deletion = _deletion(request_deletion(client, "kf1@shop"))
    assert (deletion.status, deletion.reason, deletion.errcode, deletion.attempts) == ("succeeded", "", 0, 1)
    assert deletion.finished_at is not None
    (call,) = wechat.calls
    assert call.request.method == "POST"
    assert call.request.url == f"{DEL_URL}?access_token=ACCESS_{merchant.appid}"
    assert body_of(call) == {"kf_account": "kf1@shop"}


def test_unknown_account_fails_with_65401_and_is_not_retried(wechat, merchant, client, request_deletion):
    wechat.post(
        DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account rid: 6643a1f2-1a2b3c4d-5e6f7a8b"}
    )
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", "invalid_kf_account", 65401)
    assert deletion.rid == "6643a1f2-1a2b3c4d-5e6f7a8b"
    assert deletion.attempts == 1
    assert len(wechat.calls) == 1


@pytest.mark.parametrize(
    "unknown",
    [
        pytest.param({"body": requests.exceptions.ReadTimeout("read timed out")}, id="read-timeout"),
        pytest.param({"json": {"errcode": -1, "errmsg": "system error"}}, id="errcode--1"),
        pytest.param({"status": 500, "body": "oops"}, id="http-500"),
        pytest.param(
            {"status": 200, "body": '{"errcode": 0, "errm', "content_type": "application/json"}, id="truncated"
        ),
    ],
)
def test_65401_after_an_attempt_whose_outcome_was_unknown_means_already_gone(
    wechat, merchant, client, request_deletion, unknown
):
    wechat.post(DEL_URL, **unknown)
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("succeeded", "already_gone", 65401)
    assert deletion.outcome_unknown is True
    assert deletion.attempts == 2
    assert len(del_calls(wechat)) == 2


@pytest.mark.parametrize(
    "definitive",
    [
        pytest.param({"body": requests.exceptions.ConnectTimeout("connect timed out")}, id="connect-timeout"),
    ],
)
def test_65401_after_an_attempt_that_never_reached_wechat_is_still_invalid(
    wechat, merchant, client, request_deletion, definitive
):
    wechat.post(DEL_URL, **definitive)
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason) == ("failed", "invalid_kf_account")
    assert deletion.outcome_unknown is False
    assert len(del_calls(wechat)) == 2


def test_45011_waits_for_the_next_minute_and_a_65401_then_is_still_definitive(
    wechat, merchant, client, request_deletion, make_due
):
    wechat.post(
        DEL_URL, json={"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"}
    )
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    deletion = _deletion(request_deletion(client))
    # Not a failure: deferred to the next minute (the eager re-send found it not yet due).
    assert (deletion.status, deletion.reason, deletion.errcode, deletion.transient_failures) == (
        "pending",
        "minute_quota",
        45011,
        0,
    )
    assert len(del_calls(wechat)) == 1
    make_due(deletion.pk)
    run_deletions(merchant.pk)
    deletion.refresh_from_db()
    assert (deletion.status, deletion.reason, deletion.outcome_unknown) == ("failed", "invalid_kf_account", False)
    assert len(del_calls(wechat)) == 2


# --- per-merchant blockers (docs/wechat.md §11) ----------------------------------------------------

WHITELIST = {"errcode": 40164, "errmsg": "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: a-b"}


def test_40164_holds_the_merchants_deletions_with_an_alert_on_it_and_one_probe_releases_them(
    wechat, merchant, client, request_deletion, make_due
):
    from authorizers import alerts

    wechat.post(DEL_URL, json=WHITELIST)
    first = _deletion(request_deletion(client, "kf1@shop"))
    assert (first.status, first.reason, first.errcode, first.transient_failures) == (
        "pending",
        "merchant_held",
        40164,
        0,
    )
    (alert,) = alerts.alerts_active(authorizer_appid=merchant.appid)
    assert (alert.code, alert.errcode) == ("merchant_ip_not_whitelisted", 40164)
    assert "whitelist" in alert.fix and "40164" in alert.message
    assert not alerts.platform_blocked()  # the merchant's problem, not the platform's

    second = _deletion(request_deletion(client, "kf2@shop"))
    third = _deletion(request_deletion(client, "kf3@shop"))
    # While it is held, a batch sends one deletion as a probe and holds the rest without a call.
    calls = len(del_calls(wechat))
    make_due(first.pk), make_due(second.pk), make_due(third.pk)
    run_deletions(merchant.pk)
    assert len(del_calls(wechat)) == calls + 1

    # The merchant fixes its whitelist: the probe goes through, the alert clears, the rest follow.
    wechat.replace("POST", DEL_URL, json=OK)
    for d in (first, second, third):
        make_due(d.pk)
    run_deletions(merchant.pk)
    run_deletions(merchant.pk)
    assert set(
        DeletionRequest.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list("status", flat=True)
    ) == {"succeeded"}
    assert alerts.alerts_active(authorizer_appid=merchant.appid) == []


@pytest.mark.parametrize(("errcode", "reason"), [(48004, "api_banned"), (50002, "account_restricted")])
def test_wechats_sanctions_fail_the_deletion_with_a_readable_reason_and_an_alert(
    wechat, merchant, client, request_deletion, errcode, reason
):
    from authorizers import alerts

    wechat.post(DEL_URL, json={"errcode": errcode, "errmsg": "api forbidden for irregularities"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", reason, errcode)
    assert deletion.get_reason_display().startswith(str(errcode))
    (alert,) = alerts.alerts_active(authorizer_appid=merchant.appid)
    assert alert.code == reason and alert.fix


def test_65400_fails_with_kf_not_enabled_and_is_not_retried(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json={"errcode": 65400, "errmsg": "please enable new custom service"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode, deletion.attempts) == (
        "failed",
        "kf_not_enabled",
        65400,
        1,
    )
    assert len(wechat.calls) == 1


def test_an_errcode_outside_the_table_fails_without_retrying(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json={"errcode": 40003, "errmsg": "invalid openid"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", "wechat_error", 40003)
    assert len(wechat.calls) == 1


def _authorizer_info(appid: str, func_ids: list[int]) -> dict:
    return {
        "authorizer_info": {
            "nick_name": "Shop",
            "service_type_info": {"id": 2},
            "verify_type_info": {"id": 0},
            "user_name": "gh_1",
            "alias": "shop",
            "account_status": 1,
        },
        "authorization_info": {
            "authorizer_appid": appid,
            "func_info": [{"funcscope_category": {"id": i}} for i in func_ids],
        },
    }


@pytest.mark.parametrize("errcode", [48001, 61007])
def test_permission_errors_fail_and_reread_the_merchants_permissions(
    wechat, merchant, client, request_deletion, errcode
):
    wechat.post(DEL_URL, json={"errcode": errcode, "errmsg": "api unauthorized"})
    wechat.post(INFO_URL, json=_authorizer_info(merchant.appid, [2, 3]))
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", "permission_denied", errcode)
    assert len(del_calls(wechat)) == 1
    (info_call,) = calls_to(wechat, INFO_URL)
    assert body_of(info_call)["authorizer_appid"] == merchant.appid
    merchant.refresh_from_db()
    assert merchant.func_ids == [2, 3]
    # The re-read permissions now refuse the next request before WeChat is called.
    response = client.post("/api/v1/deletions/", {"kf_account": "kf2@shop"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_eligible"
    assert len(del_calls(wechat)) == 1


@pytest.mark.parametrize("errcode", [61003])  # 61023 is not a revocation (docs/wechat.md §6)
def test_revocation_seen_on_the_delete_fails_and_marks_the_merchant_revoked(
    wechat, merchant, client, request_deletion, errcode
):
    wechat.post(DEL_URL, json={"errcode": errcode, "errmsg": "component is not authorized by this account"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", "authorization_revoked", errcode)
    assert len(wechat.calls) == 1
    merchant.refresh_from_db()
    assert merchant.status == "revoked" and merchant.revoked_at is not None
    # A revoked merchant keeps no token, whichever path noticed.
    assert (merchant.access_token_ciphertext, merchant.refresh_token_ciphertext) == ("", "")
    (revoked,) = AuditEvent.objects.filter(action="authorizer.revoked", authorizer_appid=merchant.appid)
    assert revoked.errcode == errcode


def test_revocation_seen_on_the_token_refresh_fails_the_deletion(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": "access_token expired"})
    wechat.post(TOKEN_URL, json={"errcode": 61003, "errmsg": "component is not authorized by this account"})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason) == ("failed", "authorization_revoked")
    assert len(del_calls(wechat)) == 1 and len(calls_to(wechat, TOKEN_URL)) == 1
    merchant.refresh_from_db()
    assert merchant.status == "revoked"
    assert (merchant.access_token_ciphertext, merchant.refresh_token_ciphertext) == ("", "")
    assert AuditEvent.objects.filter(action="authorizer.revoked", authorizer_appid=merchant.appid).count() == 1


# --- transient answers -------------------------------------------------------------------------

TRANSIENT = [
    pytest.param({"json": {"errcode": -1, "errmsg": "system error"}}, id="errcode--1"),
    pytest.param({"status": 500, "body": "Internal Server Error"}, id="http-500"),
    pytest.param({"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"}, id="http-502"),
    pytest.param({"body": requests.exceptions.ReadTimeout("read timed out")}, id="read-timeout"),
    pytest.param({"body": requests.exceptions.ConnectTimeout("connect timed out")}, id="connect-timeout"),
    pytest.param({"body": requests.exceptions.ConnectionError("connection refused")}, id="connection-error"),
    pytest.param({"status": 200, "body": "<html><body>busy</body></html>", "content_type": "text/html"}, id="html"),
    pytest.param({"status": 200, "body": '{"errcode": 0, "errm', "content_type": "application/json"}, id="truncated"),
    pytest.param({"status": 200, "body": "[]", "content_type": "application/json"}, id="not-an-object"),
]


@pytest.mark.parametrize("transient", TRANSIENT)
def test_transient_failure_then_success_succeeds_after_one_retry(wechat, merchant, client, request_deletion, transient):
    wechat.post(DEL_URL, **transient)
    wechat.post(DEL_URL, json=OK)
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.errcode, deletion.attempts, deletion.transient_failures) == ("succeeded", 0, 2, 1)
    assert [body_of(c) for c in del_calls(wechat)] == [{"kf_account": "kf1@shop"}] * 2


@pytest.mark.parametrize("transient", TRANSIENT)
def test_transient_failures_beyond_the_bound_fail_as_upstream_unavailable(
    wechat, merchant, client, request_deletion, settings, transient
):
    settings.DELETION_MAX_TRANSIENT_FAILURES = 3
    wechat.post(DEL_URL, **transient)  # the last registered answer repeats
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.attempts) == ("failed", "upstream_unavailable", 3)
    assert deletion.transient_failures == 3
    assert len(del_calls(wechat)) == 3


def test_retry_is_not_sent_before_it_is_due_and_runs_once_due(
    wechat, merchant, client, request_deletion, settings, make_due
):
    settings.DELETION_RETRY_BASE_SECONDS = 60.0
    settings.DELETION_RETRY_CAP_SECONDS = 60.0
    wechat.post(DEL_URL, json={"errcode": -1, "errmsg": "system error"})
    wechat.post(DEL_URL, json=OK)
    before = timezone.now()
    body = request_deletion(client)
    # Eager Celery ran the countdown re-send at once: it found the row not yet due and did nothing.
    deletion = _deletion(body)
    assert (deletion.status, deletion.reason, deletion.errcode, deletion.attempts) == (
        "pending",
        "retry_scheduled",
        -1,
        1,
    )
    assert deletion.next_attempt_at is not None
    assert before + timedelta(seconds=30) <= deletion.next_attempt_at <= timezone.now() + timedelta(seconds=60)
    assert len(wechat.calls) == 1
    run_deletions.delay(merchant.pk)  # an early duplicate send changes nothing
    assert len(wechat.calls) == 1
    make_due(deletion.pk)
    run_deletions.delay(merchant.pk)
    deletion.refresh_from_db()
    assert (deletion.status, deletion.attempts, deletion.errcode) == ("succeeded", 2, 0)
    assert len(del_calls(wechat)) == 2


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = services.RetryPolicy(base_seconds=2, cap_seconds=30)
    for failures, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (9, 30)]:
        delays = [policy.delay(failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


# --- tokens ------------------------------------------------------------------------------------


def test_expired_token_42001_refreshes_exactly_once_and_succeeds_with_the_new_token(
    wechat, merchant, client, request_deletion
):
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": "access_token expired rid: 1-2-3"})
    wechat.post(DEL_URL, json=OK)
    wechat.post(
        TOKEN_URL,
        json={"authorizer_access_token": "NEWTOKEN1", "expires_in": 7200, "authorizer_refresh_token": "REFRESH2"},
    )
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.errcode, deletion.attempts) == ("succeeded", 0, 1)
    (token_call,) = calls_to(wechat, TOKEN_URL)
    assert body_of(token_call)["authorizer_refresh_token"] == f"REFRESH_{merchant.appid}"
    first, second = del_calls(wechat)
    assert first.request.url.endswith(f"access_token=ACCESS_{merchant.appid}")
    assert second.request.url.endswith("access_token=NEWTOKEN1")
    merchant.refresh_from_db()
    assert merchant.token_refresh_count == 1


def test_token_still_rejected_after_the_refresh_is_retried_later_not_refreshed_in_a_loop(
    wechat, merchant, client, request_deletion, settings
):
    settings.DELETION_MAX_TRANSIENT_FAILURES = 2
    wechat.post(DEL_URL, json={"errcode": 40001, "errmsg": "invalid credential"})
    wechat.post(TOKEN_URL, json={"authorizer_access_token": "NEWTOKEN1", "expires_in": 7200})
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("failed", "upstream_unavailable", 40001)
    # Each attempt: one call, one refresh (only while the rejected token is still current), one retry.
    assert len(del_calls(wechat)) == 4
    assert len(calls_to(wechat, TOKEN_URL)) == 2


def test_a_failed_token_refresh_does_not_make_the_deletion_outcome_unknown(wechat, merchant, client, request_deletion):
    # kfaccount/del answered 42001 (definitive: nothing deleted), then the token refresh timed out.
    # The unknown outcome belongs to the refresh, not to the deletion: a later 65401 is a real
    # "no such account", not "already gone".
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": "access_token expired"})
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    wechat.post(TOKEN_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    deletion = _deletion(request_deletion(client))
    assert (deletion.status, deletion.reason) == ("failed", "invalid_kf_account")
    assert deletion.outcome_unknown is False
    assert len(del_calls(wechat)) == 2 and len(calls_to(wechat, TOKEN_URL)) == 1


# --- the daily quota ---------------------------------------------------------------------------


def _next_midnight_shanghai(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def test_daily_quota_45009_pauses_the_merchant_until_midnight_shanghai_and_defers_the_rest(
    wechat, merchant, client, request_deletion, make_authorizer, api_client_for
):
    wechat.post(DEL_URL, json={"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    first = _deletion(request_deletion(client, "kf1@shop"))
    assert (first.status, first.reason, first.errcode, first.attempts) == ("pending", "quota_exhausted", 45009, 1)
    assert first.finished_at is None
    merchant.refresh_from_db()
    midnight = _next_midnight_shanghai(timezone.now())
    assert midnight <= merchant.quota_paused_until <= midnight + timedelta(minutes=5)
    assert first.next_attempt_at == merchant.quota_paused_until
    assert first.dispatched_at is None

    second = _deletion(request_deletion(client, "kf2@shop"))
    assert (second.status, second.reason, second.attempts) == ("pending", "quota_exhausted", 0)
    assert len(wechat.calls) == 1  # the second one never reached WeChat

    # Another merchant's quota is its own.
    wechat.post(DEL_URL, json=OK)
    other = make_authorizer()
    third = _deletion(request_deletion(api_client_for(other), "kf1@other"))
    assert third.status == "succeeded"
    assert del_calls(wechat)[-1].request.url.endswith(f"access_token=ACCESS_{other.appid}")


def test_deferred_deletions_run_once_the_quota_has_reset(
    wechat, merchant, client, request_deletion, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json={"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    wechat.post(DEL_URL, json=OK)
    deferred = _deletion(request_deletion(client))
    assert deferred.status == "pending"
    # Midnight has passed: the sweeper finds the row due and sends it.
    past = timezone.now() - timedelta(seconds=1)
    Authorizer.objects.filter(pk=merchant.pk).update(quota_paused_until=past)
    DeletionRequest.objects.filter(pk=deferred.pk).update(next_attempt_at=past)
    from kfaccounts.tasks import sweep_deletions

    with django_capture_on_commit_callbacks(execute=True):
        sweep_deletions.delay()
    deferred.refresh_from_db()
    assert (deferred.status, deferred.attempts) == ("succeeded", 2)
    assert len(del_calls(wechat)) == 2


@pytest.mark.parametrize(
    ("now_utc", "reset_day"),
    [
        ("2025-03-01T15:59:00+00:00", "2025-03-02"),  # 23:59 in Shanghai
        ("2025-03-01T16:00:01+00:00", "2025-03-03"),  # 00:00:01 in Shanghai, already the 2nd
        ("2025-03-01T03:00:00+00:00", "2025-03-02"),
        ("2025-12-31T20:00:00+00:00", "2026-01-02"),
    ],
)
def test_next_quota_reset_is_the_next_midnight_in_china_whatever_the_utc_time(now_utc, reset_day):
    reset = services.next_quota_reset(datetime.fromisoformat(now_utc)).astimezone(SHANGHAI)
    assert reset.date().isoformat() == reset_day
    assert reset.hour == 0 and 30 <= reset.minute * 60 + reset.second <= 300


def test_a_retry_arriving_a_moment_early_runs_rather_than_waiting_for_the_sweeper(wechat, merchant):
    from audit.services import Actor

    wechat.post(DEL_URL, json=OK)
    (deletion,) = services.deletions_request(authorizer=merchant, kf_accounts=["kf1@shop"], actor=Actor.system("test"))
    DeletionRequest.objects.filter(pk=deletion.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=1))
    run_deletions.delay(merchant.pk)
    deletion.refresh_from_db()
    assert deletion.status == "succeeded"
    assert len(del_calls(wechat)) == 1


def test_no_verify_ticket_yet_holds_the_deletion_behind_a_platform_alert_and_never_calls_wechat(
    wechat, make_authorizer, api_client_for, request_deletion
):
    """Issue 16.3: a missing ticket is the platform's problem; nothing fails, nothing burns retries."""
    from authorizers import alerts

    merchant = make_authorizer(token_ttl=1)  # its token needs a refresh, and WeChat has pushed no ticket
    deletion = _deletion(request_deletion(api_client_for(merchant)))
    assert (deletion.status, deletion.reason, deletion.errcode) == ("pending", "platform_held", None)
    assert deletion.errmsg == "no component_verify_ticket received yet"
    assert deletion.transient_failures == 0 and not deletion.outcome_unknown
    assert len(wechat.calls) == 0
    (alert,) = alerts.alerts_active(authorizer_appid="")
    assert alert.code == "verify_ticket_missing" and "ticket" in alert.fix
