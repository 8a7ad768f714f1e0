"""The verify-ticket watchdog: a stale ticket raises the platform alert and asks WeChat to push again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.alerts import alerts_active
from authorizers.models import ComponentCredential, PlatformAlert
from authorizers.ticket_watch import verify_ticket_watch
from tests.conftest import WECHAT

pytestmark = pytest.mark.django_db

START_PUSH = f"{WECHAT}/cgi-bin/component/api_start_push_ticket"
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
    assert not verify_ticket_watch().stale
    assert _pushes(wechat) == [] and _ticket_alerts() == []

    _ticket_age(21)
    first = verify_ticket_watch()
    assert first.stale and first.push_requested
    (call,) = _pushes(wechat)
    assert json.loads(call.request.body) == {
        "component_appid": settings.WECHAT_COMPONENT_APPID,
        "component_secret": settings.WECHAT_COMPONENT_APPSECRET,
    }
    (alert,) = _ticket_alerts()  # what the admin shows at the top of every page
    assert AuditEvent.objects.filter(action="alert.raised", subject="verify_ticket_stale").count() == 1

    # The next checks (every 5 minutes) still see no ticket: the alert stays, no second call.
    for minutes_since_the_call in (5, 10, 19):
        _push_asked_minutes_ago(minutes_since_the_call)
        again = verify_ticket_watch()
        assert again.stale and not again.push_requested
    assert len(_pushes(wechat)) == 1 and len(_ticket_alerts()) == 1
    # Once the interval (20 min) has passed, it asks once more.
    _push_asked_minutes_ago(21)
    assert verify_ticket_watch().push_requested
    assert len(_pushes(wechat)) == 2
    assert AuditEvent.objects.filter(action="wechat.start_push_ticket_called", outcome="ok").count() == 2

    # A ticket arrives: the alert clears, nothing is called.
    _ticket_age(0)
    assert not verify_ticket_watch().stale
    assert _ticket_alerts() == [] and len(_pushes(wechat)) == 2


def test_the_watchdog_counts_a_never_received_ticket_from_its_first_look(wechat, db):
    wechat.post(START_PUSH, json=OK)
    now = timezone.now()
    assert not verify_ticket_watch(now=now).stale
    assert not verify_ticket_watch(now=now + timedelta(minutes=19)).stale
    assert verify_ticket_watch(now=now + timedelta(minutes=20)).push_requested
    assert len(_pushes(wechat)) == 1
    assert len(_ticket_alerts()) == 1


def test_a_failing_start_push_ticket_is_audited_and_not_retried_within_the_interval(wechat, component_ready):
    wechat.post(START_PUSH, json={"errcode": -1, "errmsg": "system error"})
    _ticket_age(30)
    assert not verify_ticket_watch().push_requested
    assert not verify_ticket_watch().push_requested
    assert len(_pushes(wechat)) == 1
    assert AuditEvent.objects.filter(action="wechat.start_push_ticket_called", errcode=-1).count() == 1
