"""The dashboard: ticket age and token expiry, merchants by state, deletions, failures, errcodes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.models import ComponentCredential

pytestmark = pytest.mark.django_db


def _text(html: str, section: str) -> str:
    match = re.search(rf'<section class="console-card" id="{section}">(.*?)</section>', html, re.S)
    assert match, section
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1)))


def test_a_fresh_ticket_shows_its_age_and_no_warning(superuser_client, shop):
    html = superuser_client.get("/admin/").content.decode()
    component = _text(html, "dash-component")
    assert re.search(r"\d+ min \d\d s ago", component)
    assert 'id="ticket-warning"' not in html
    assert "component token expires" in component and "expired" not in component


def test_a_ticket_older_than_20_minutes_is_a_warning(superuser_client, shop):
    ComponentCredential.objects.update(
        ticket_received_at=timezone.now() - timedelta(minutes=21, seconds=5),
        access_token_expires_at=timezone.now() - timedelta(minutes=1),
    )
    html = superuser_client.get("/admin/").content.decode()
    component = _text(html, "dash-component")
    assert "21 min 0" in component
    assert "No verify ticket for more than 20 minutes" in component
    assert "expired" in component


def test_merchants_are_counted_by_state_and_reason(superuser_client, shop, make_authorizer):
    make_authorizer(func_ids=[2, 3])  # no kf permission set
    make_authorizer(verify_type_id=-1)  # an uncertified Official Account
    make_authorizer(status="revoked")
    make_authorizer(quota_paused_until=timezone.now() + timedelta(hours=3))
    merchants = _text(superuser_client.get("/admin/").content.decode(), "dash-merchants")
    assert "eligible 2 " in merchants  # the shop and the paused one
    assert "not eligible 2 " in merchants
    assert "no kf permission set granted 1" in merchants and "not certified 1" in merchants
    assert "revoked 1" in merchants and "paused for quota 1" in merchants


def test_deletions_by_status_failures_and_errcodes(superuser_client, shop):
    AuditEvent.objects.create(actor_kind="system", action="wechat.kfaccount.del", outcome="ok", errcode=0)
    AuditEvent.objects.create(
        actor_kind="system", action="wechat.kfaccount.del", outcome="quota_exceeded", errcode=45009
    )
    html = superuser_client.get("/admin/").content.decode()
    deletions = _text(html, "dash-deletions")
    assert "pending 0 deferred for quota 1" in deletions and "failed (24 h) 1" in deletions
    assert "succeeded 1 1" in deletions and "failed 1 1" in deletions
    assert html.count('title="') > 31  # one column per hour and per day in the chart
    failed = shop.deletions.get(status="failed")
    failures = _text(html, "dash-failures")
    assert f"#{failed.pk}" in failures and "kf_not_enabled (65400)" in failures
    assert reverse("admin:kfaccounts_deletionrequest_change", args=[failed.pk]) in html
    upstream = _text(html, "dash-upstream")
    # Three calls audited (the shop fixture's failed attempt and the two above): 65400 and 45009 one each.
    assert "3 calls to WeChat" in upstream
    assert "65400 kf_not_enabled 1 33.3%" in upstream and "45009 quota_exceeded 1 33.3%" in upstream


def test_an_open_platform_alert_is_on_every_console_page_until_an_operator_clears_it(
    operator_client, shop, django_capture_on_commit_callbacks
):
    from authorizers import alerts
    from authorizers.models import PlatformAlert

    alert = alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED)
    for url in ("/admin/", reverse("admin:kfaccounts_deletionrequest_changelist")):
        html = operator_client.get(url).content.decode()
        assert 'data-platform-alert="ip_not_whitelisted"' in html and "(61004)" in html, url
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            reverse("admin:authorizers_platformalert_changelist"),
            {"action": "clear", "index": 0, "_selected_action": [alert.pk]},
        )
    alert.refresh_from_db()
    assert alert.cleared_at is not None and alert.cleared_by == "ops_li"
    assert AuditEvent.objects.filter(action="platform.alert_cleared", actor_label="ops_li").exists()
    assert "data-platform-alert" not in operator_client.get("/admin/").content.decode()


def test_a_merchant_alert_is_on_the_dashboard_and_the_alert_list_but_not_in_the_page_banner(operator_client, shop):
    from authorizers import alerts
    from authorizers.models import PlatformAlert

    stranger = "wx" + "e" * 16
    gone = alerts.alert_raise(
        code=PlatformAlert.Code.MERCHANT_GONE, authorizer_appid=shop.appid, message=f"{shop.appid} is gone"
    )
    alerts.alert_raise(code=PlatformAlert.Code.MERCHANT_UNKNOWN, authorizer_appid=stranger, message="who is this")
    # Raised again (the next night): still one open alert, counted twice.
    assert (
        alerts.alert_raise(
            code=PlatformAlert.Code.MERCHANT_GONE, authorizer_appid=shop.appid, message=f"{shop.appid} is gone"
        ).pk
        == gone.pk
    )
    assert PlatformAlert.objects.get(pk=gone.pk).occurrences == 2

    html = operator_client.get("/admin/").content.decode()
    card = _text(html, "dash-merchant-alerts")
    assert (
        shop.appid in card and f"{shop.appid} is gone" in card and "WeChat no longer lists an active merchant" in card
    )
    assert stranger in card and "who is this" in card
    assert "data-platform-alert" not in html  # the banner is for platform-wide alerts only

    listing = operator_client.get(reverse("admin:authorizers_platformalert_changelist")).content.decode()
    assert f"{shop.nickname} ({shop.appid})" in listing and f"{stranger} (not known here)" in listing
    assert f"{shop.appid} is gone" in listing

    operator_client.post(
        reverse("admin:authorizers_platformalert_changelist"),
        {"action": "clear", "index": 0, "_selected_action": [gone.pk]},
    )
    assert [a.authorizer_appid for a in alerts.alerts_active()] == [stranger]
    assert AuditEvent.objects.filter(
        action="platform.alert_cleared", authorizer_appid=shop.appid, actor_label="ops_li"
    ).exists()
    assert "No open merchant alerts" not in _text(
        operator_client.get("/admin/").content.decode(), "dash-merchant-alerts"
    )


def test_audit_events_link_to_their_merchant_and_deletion(superuser_client, shop):
    failed = shop.deletions.get(status="failed")
    html = superuser_client.get(reverse("admin:audit_auditevent_changelist")).content.decode()
    merchant_link = f"{reverse('admin:authorizers_authorizer_changelist')}?appid={shop.appid}"
    assert merchant_link in html
    assert reverse("admin:kfaccounts_deletionrequest_change", args=[failed.pk]) in html
    listing = superuser_client.get(merchant_link).content.decode()
    assert "1 merchant" in listing and shop.appid in listing
