"""Housekeeping schedules: installed by default, the ticket watchdog, reconciliation, retention, re-sync."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor, audit_record
from authorizers.alerts import alerts_active
from authorizers.models import AuthorizerStatus, ComponentCredential, PlatformAlert
from cleanup import housekeeping
from tests.conftest import WECHAT

pytestmark = pytest.mark.django_db

START_PUSH = f"{WECHAT}/cgi-bin/component/api_start_push_ticket"
AUTHORIZER_LIST = f"{WECHAT}/cgi-bin/component/api_get_authorizer_list"
OK = {"errcode": 0, "errmsg": "ok"}


def _pushes(wechat) -> list:
    return [c for c in wechat.calls if c.request.url.split("?")[0] == START_PUSH]


def _ticket_age(minutes: float) -> None:
    ComponentCredential.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).update(
        ticket_received_at=timezone.now() - timedelta(minutes=minutes)
    )


def _push_asked_minutes_ago(minutes: float) -> None:
    ComponentCredential.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).update(
        push_restart_requested_at=timezone.now() - timedelta(minutes=minutes)
    )


def _ticket_alerts() -> list[PlatformAlert]:
    return [a for a in alerts_active() if a.code == PlatformAlert.Code.VERIFY_TICKET_STALE]


def test_the_watchdog_asks_wechat_to_push_a_ticket_when_tickets_stop_and_not_again_within_its_interval(
    wechat, component_ready, settings
):
    settings.VERIFY_TICKET_RESTART_MINUTES = 20
    wechat.post(START_PUSH, json=OK)
    _ticket_age(5)
    assert not housekeeping.verify_ticket_watch().stale
    assert _pushes(wechat) == [] and _ticket_alerts() == []

    _ticket_age(21)
    first = housekeeping.verify_ticket_watch()
    assert first.stale and first.push_requested
    (call,) = _pushes(wechat)
    assert json.loads(call.request.body) == {
        "component_appid": settings.WECHAT_COMPONENT_APPID,
        "component_secret": settings.WECHAT_COMPONENT_APPSECRET,
    }
    (alert,) = _ticket_alerts()  # what the admin shows at the top of every page
    assert AuditEvent.objects.filter(action="platform.alert_raised", subject="verify_ticket_stale").count() == 1

    # The next checks (every 5 minutes) still see no ticket: the alert stays, no second call.
    for minutes_since_the_call in (5, 10, 19):
        _push_asked_minutes_ago(minutes_since_the_call)
        again = housekeeping.verify_ticket_watch()
        assert again.stale and not again.push_requested
    assert len(_pushes(wechat)) == 1 and len(_ticket_alerts()) == 1
    # Once the interval (20 min) has passed, it asks once more.
    _push_asked_minutes_ago(21)
    assert housekeeping.verify_ticket_watch().push_requested
    assert len(_pushes(wechat)) == 2
    assert AuditEvent.objects.filter(action="wechat.api_start_push_ticket", outcome="ok").count() == 2

    # A ticket arrives: the alert clears, nothing is called.
    _ticket_age(0)
    assert not housekeeping.verify_ticket_watch().stale
    assert _ticket_alerts() == [] and len(_pushes(wechat)) == 2


def test_the_watchdog_counts_a_never_received_ticket_from_its_first_look(wechat, db):
    wechat.post(START_PUSH, json=OK)
    now = timezone.now()
    assert not housekeeping.verify_ticket_watch(now=now).stale
    assert not housekeeping.verify_ticket_watch(now=now + timedelta(minutes=19)).stale
    assert housekeeping.verify_ticket_watch(now=now + timedelta(minutes=20)).push_requested
    assert len(_pushes(wechat)) == 1
    assert len(_ticket_alerts()) == 1


def test_a_failing_start_push_ticket_is_audited_and_not_retried_within_the_interval(wechat, component_ready):
    wechat.post(START_PUSH, json={"errcode": -1, "errmsg": "system error"})
    _ticket_age(30)
    assert not housekeeping.verify_ticket_watch().push_requested
    assert not housekeeping.verify_ticket_watch().push_requested
    assert len(_pushes(wechat)) == 1
    assert AuditEvent.objects.filter(action="wechat.api_start_push_ticket", errcode=-1).count() == 1


def test_reconciliation_flags_merchants_wechat_lists_as_gone_or_unknown_and_clears_what_resolved(
    wechat, component_ready, make_authorizer
):
    kept = make_authorizer()
    gone = make_authorizer()
    make_authorizer(status=AuthorizerStatus.REVOKED)  # revoked here and not listed: consistent
    stranger = "wx" + "f" * 16
    page1 = {"total_count": 2, "list": [{"authorizer_appid": kept.appid, "auth_time": 1}]}
    page2 = {"total_count": 2, "list": [{"authorizer_appid": stranger, "auth_time": 2}]}
    wechat.post(AUTHORIZER_LIST, json=page1)
    wechat.post(AUTHORIZER_LIST, json=page2)

    result = housekeeping.authorizers_reconcile(actor=Actor.schedule("test"))

    assert (result.listed, result.gone, result.unknown) == (2, [gone.appid], [stranger])
    offsets = [json.loads(c.request.body)["offset"] for c in wechat.calls if AUTHORIZER_LIST in c.request.url]
    assert offsets == [0, 1]
    active = {(a.code, a.authorizer_appid): a for a in alerts_active()}
    assert set(active) == {("merchant_gone", gone.appid), ("merchant_unknown", stranger)}
    assert gone.appid in active[("merchant_gone", gone.appid)].message
    assert alerts_active(authorizer_appid=gone.appid) == [active[("merchant_gone", gone.appid)]]
    assert alerts_active(authorizer_appid="") == []  # no platform-wide alert: the banner stays empty

    # WeChat now lists both of ours and no stranger: both flags clear.
    wechat.replace(
        "POST",
        AUTHORIZER_LIST,
        json={"total_count": 2, "list": [{"authorizer_appid": kept.appid}, {"authorizer_appid": gone.appid}]},
    )
    housekeeping.authorizers_reconcile(actor=Actor.schedule("test"))
    assert alerts_active() == []
    assert PlatformAlert.objects.filter(cleared_at__isnull=False).count() == 2


def test_nightly_re_read_covers_every_active_merchant_and_kf_resync_only_the_eligible(
    make_authorizer, django_capture_on_commit_callbacks
):
    from authorizers.tasks import refresh_authorizer_info
    from kfaccounts.tasks import sync_kf_accounts

    eligible = make_authorizer()
    uncertified = make_authorizer(verify_type_id=-1)
    make_authorizer(status=AuthorizerStatus.REVOKED)
    with django_capture_on_commit_callbacks() as reread:
        assert housekeeping.merchants_reread() == 2
    assert sorted(c.args[0] for c in reread if c.func == refresh_authorizer_info.delay) == sorted(
        [eligible.pk, uncertified.pk]
    )
    with django_capture_on_commit_callbacks() as resync:
        assert housekeeping.kf_accounts_resync_all() == 1
    assert [c.args[:2] for c in resync if c.func == sync_kf_accounts.delay] == [(eligible.pk, "schedule")]


def test_audit_retention_deletes_only_old_events_in_batches(db, settings):
    settings.AUDIT_RETENTION_DAYS = 400
    settings.AUDIT_RETENTION_BATCH = 3
    for n in range(7):
        audit_record(actor=Actor.system("t"), action="old.event", subject=str(n))
    audit_record(actor=Actor.system("t"), action="recent.event")
    AuditEvent.objects.filter(action="old.event").update(at=timezone.now() - timedelta(days=401))
    assert housekeeping.audit_retention_apply() == 7
    assert not AuditEvent.objects.filter(action="old.event").exists()
    assert AuditEvent.objects.filter(action="recent.event").exists()
    assert AuditEvent.objects.get(action="audit.pruned").detail["deleted"] == 7
    assert housekeeping.audit_retention_apply() == 0


def test_the_default_schedules_are_installed_into_django_celery_beat_and_stay_editable(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from platform_app.celery import app

    # What DatabaseScheduler.setup_schedule does with CELERY_BEAT_SCHEDULE when beat starts.
    for name, entry in app.conf.beat_schedule.items():
        ModelEntry.from_entry(name, app=app, **entry)
    installed = {t.name: t for t in PeriodicTask.objects.all()}
    for name, task in {
        "sweep-deletions": "kfaccounts.tasks.sweep_deletions",
        "refresh-expiring-tokens": "authorizers.tasks.refresh_expiring_tokens",
        "reread-merchants-nightly": "cleanup.tasks.reread_merchants",
        "resync-kf-accounts": "cleanup.tasks.resync_kf_accounts",
        "audit-retention": "cleanup.tasks.prune_audit_log",
        "verify-ticket-watchdog": "cleanup.tasks.watch_verify_ticket",
        "finish-cleanup-runs": "cleanup.tasks.finish_cleanup_runs",
        "sweep-webhook-deliveries": "webhooks.tasks.sweep_webhook_deliveries",
    }.items():
        assert installed[name].task == task and installed[name].enabled
    assert installed["reread-merchants-nightly"].crontab is not None
    assert installed["verify-ticket-watchdog"].interval.every == settings.VERIFY_TICKET_WATCHDOG_SECONDS
