"""Errcodes about the platform itself, not one deletion: 61004 holds work, 61005/61006 restart pushes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import Actor
from authorizers import alerts
from authorizers.models import ComponentCredential, PlatformAlert
from kfaccounts.models import DeletionRequest
from tests.conftest import WECHAT
from tests.kfaccounts.conftest import DEL_URL, OK, TOKEN_URL, calls_to, del_calls

pytestmark = pytest.mark.django_db

NOT_WHITELISTED = {"errcode": 61004, "errmsg": "access clientip is not registered requestIP: 203.0.113.7 rid: ab-cd"}
COMPONENT_TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_component_token"
START_PUSH_URL = f"{WECHAT}/cgi-bin/component/api_start_push_ticket"
PREAUTH_URL = f"{WECHAT}/cgi-bin/component/api_create_preauthcode"


def test_61004_holds_every_deletion_and_raises_one_platform_alert(wechat, merchant, client, request_deletion, caplog):
    wechat.post(DEL_URL, json=NOT_WHITELISTED)

    first = DeletionRequest.objects.get(pk=request_deletion(client, "kf1@shop")["id"])
    second = DeletionRequest.objects.get(pk=request_deletion(client, "kf2@shop")["id"])

    # Held, not failed: pending again, with the reason saying why; the second never reached WeChat.
    for deletion in (first, second):
        assert (deletion.status, deletion.reason) == ("pending", "platform_held")
        assert deletion.finished_at is None and deletion.next_attempt_at is not None
        assert deletion.transient_failures == 0
    assert first.errcode == 61004 and first.attempts == 1
    assert second.attempts == 0
    assert len(del_calls(wechat)) == 1
    (alert,) = alerts.alerts_active()
    assert (alert.code, alert.errcode) == ("ip_not_whitelisted", 61004)
    assert [r for r in caplog.records if "platform alert" in r.getMessage() and r.levelname == "ERROR"]


def test_a_held_deletion_runs_once_the_alert_is_cleared(wechat, merchant, client, request_deletion, make_due):
    from kfaccounts.tasks import run_deletions

    wechat.post(DEL_URL, json=NOT_WHITELISTED)
    deletion_id = request_deletion(client, "kf1@shop")["id"]
    make_due(deletion_id)
    run_deletions(merchant.pk)  # a re-check while the alert is open: still held, no call
    assert len(del_calls(wechat)) == 1
    assert DeletionRequest.objects.get(pk=deletion_id).reason == "platform_held"

    assert alerts.alert_clear(code=PlatformAlert.Code.IP_NOT_WHITELISTED, actor=Actor.system("test"))
    wechat.replace("POST", DEL_URL, json=OK)
    make_due(deletion_id)
    run_deletions(merchant.pk)

    deletion = DeletionRequest.objects.get(pk=deletion_id)
    assert (deletion.status, deletion.attempts) == ("succeeded", 2)
    assert not alerts.alerts_active()


def test_clearing_the_alert_sends_held_deletions_at_once_not_at_their_recheck(
    wechat, merchant, client, request_deletion, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=NOT_WHITELISTED)
    deletion_id = request_deletion(client, "kf1@shop")["id"]
    held = DeletionRequest.objects.get(pk=deletion_id)
    assert held.reason == "platform_held" and held.next_attempt_at is not None
    assert held.next_attempt_at > timezone.now() + timedelta(seconds=30)  # its re-check is a minute away

    wechat.replace("POST", DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):  # the sends run (tasks are eager here)
        assert alerts.alert_clear(code=PlatformAlert.Code.IP_NOT_WHITELISTED, actor=Actor.system("test"))

    deletion = DeletionRequest.objects.get(pk=deletion_id)
    assert (deletion.status, deletion.attempts) == ("succeeded", 2)
    assert len(del_calls(wechat)) == 2


def test_61004_on_a_token_refresh_opens_the_alert_too_and_a_later_component_call_clears_it(
    wechat, make_authorizer, component_ready
):
    from authorizers.tokens import authorizer_token_get, platform_probe

    merchant = make_authorizer(token_ttl=1)  # inside the refresh margin: the next use refreshes
    wechat.post(TOKEN_URL, json=NOT_WHITELISTED)
    with pytest.raises(Exception, match="61004"):
        authorizer_token_get(authorizer_id=merchant.pk)
    assert [a.code for a in alerts.alerts_active()] == ["ip_not_whitelisted"]

    wechat.post(PREAUTH_URL, json={"pre_auth_code": "preauthcode@@@probe", "expires_in": 600})
    assert platform_probe() is True
    assert not alerts.alerts_active()
    assert PlatformAlert.objects.get().cleared_at is not None


def test_repeated_61004_keep_one_open_alert_and_count_occurrences(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json=NOT_WHITELISTED)
    request_deletion(client, "kf1@shop")
    alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED)
    (alert,) = PlatformAlert.objects.all()
    assert alert.occurrences == 2


@pytest.mark.parametrize("errcode", [61005, 61006])
def test_an_expired_or_invalid_ticket_holds_the_deletion_and_asks_wechat_to_push_again(
    wechat, make_authorizer, component_ready, api_client_for, request_deletion, errcode, settings
):
    # The merchant's token needs a refresh, which needs a new component token, which WeChat refuses.
    ComponentCredential.objects.update(access_token_expires_at=timezone.now() - timedelta(minutes=1))
    wechat.post(COMPONENT_TOKEN_URL, json={"errcode": errcode, "errmsg": "component ticket is expired"})
    wechat.post(START_PUSH_URL, json=OK)
    settings.DELETION_MAX_TRANSIENT_FAILURES = 2
    merchant = make_authorizer(token_ttl=1)

    deletion = DeletionRequest.objects.get(pk=request_deletion(api_client_for(merchant), "kf1@shop")["id"])

    # Held behind one platform alert (issue 16.3), not failed and no retry budget spent: a new
    # ticket can take 10 minutes. The refused ticket was dropped, so nothing resent it.
    assert (deletion.status, deletion.reason, deletion.errcode) == ("pending", "platform_held", errcode)
    assert deletion.transient_failures == 0
    assert not del_calls(wechat)
    assert alerts.platform_blocked()
    assert {a.code for a in alerts.alerts_active(authorizer_appid="")} == {"component_ticket_invalid"}
    assert len(calls_to(wechat, COMPONENT_TOKEN_URL)) == 1
    (push_restart,) = calls_to(wechat, START_PUSH_URL)  # once, however many calls failed
    assert b'"component_secret"' in push_restart.request.body
    assert ComponentCredential.objects.get().push_restart_requested_at is not None


def test_the_beat_probes_the_platform_while_it_is_blocked_and_the_alert_clears_when_wechat_answers(
    wechat, component_ready
):
    from authorizers.tasks import refresh_expiring_tokens

    alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED)
    wechat.post(PREAUTH_URL, json=NOT_WHITELISTED)
    refresh_expiring_tokens()
    assert alerts.platform_blocked()  # still refused: the alert stays open
    wechat.replace("POST", PREAUTH_URL, json={"pre_auth_code": "preauthcode@@@probe", "expires_in": 600})
    refresh_expiring_tokens()
    assert not alerts.platform_blocked()
    assert len(calls_to(wechat, PREAUTH_URL)) == 2


def test_the_beat_does_not_probe_a_healthy_platform(wechat, component_ready):
    from authorizers.tasks import refresh_expiring_tokens

    refresh_expiring_tokens()
    assert not calls_to(wechat, PREAUTH_URL)


def test_a_held_deletion_probes_the_platform_once_a_minute_and_runs_when_the_cause_cleared(
    wechat, merchant, client, request_deletion, make_due
):
    from kfaccounts.tasks import run_deletions

    wechat.post(DEL_URL, json=NOT_WHITELISTED)
    deletion_id = request_deletion(client, "kf1@shop")["id"]
    wechat.post(PREAUTH_URL, json={"pre_auth_code": "preauthcode@@@probe", "expires_in": 600})
    wechat.replace("POST", DEL_URL, json=OK)  # the whitelist was fixed
    make_due(deletion_id)
    run_deletions(merchant.pk)  # the alert was seen less than a minute ago: held, no probe
    assert not calls_to(wechat, PREAUTH_URL)
    assert DeletionRequest.objects.get(pk=deletion_id).reason == "platform_held"

    PlatformAlert.objects.update(last_seen_at=timezone.now() - timedelta(minutes=2))
    make_due(deletion_id)
    run_deletions(merchant.pk)
    assert len(calls_to(wechat, PREAUTH_URL)) == 1  # one probe ...
    assert not alerts.platform_blocked()  # ... which cleared the alert ...
    assert DeletionRequest.objects.get(pk=deletion_id).status == "succeeded"  # ... and the batch ran
