"""The dashboard: ticket age and token expiry, merchants by state, deletions, failures, errcodes."""

from __future__ import annotations

import html as html_lib
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
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))))


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
    AuditEvent.objects.create(actor_kind="system", action="wechat.kf_delete_called", outcome="ok", errcode=0)
    AuditEvent.objects.create(
        actor_kind="system", action="wechat.kf_delete_called", outcome="quota_exceeded", errcode=45009
    )
    html = superuser_client.get("/admin/").content.decode()
    deletions = _text(html, "dash-deletions")
    assert "pending 0 deferred for quota 1" in deletions and "failed (24 h) 1" in deletions
    assert "succeeded 1 1" in deletions and "failed 1 1" in deletions
    assert html.count('title="') > 31  # one column per hour and per day in the chart
    # The failure is a merchant's own mistake (65400), grouped by merchant and reason, in words, with what to do.
    failures = _text(html, "dash-failures-merchant")
    assert "Tea House 茶馆" in failures
    assert "the merchant has not enabled the new customer service on WeChat (65400)" in failures
    assert "enable the new customer service (新版客服) in the WeChat admin" in failures
    assert "kf_not_enabled" not in failures
    assert (
        reverse("admin:kfaccounts_deletionrequest_changelist")
        + f"?status__exact=failed&amp;reason=kf_not_enabled&amp;authorizer__id__exact={shop.pk}"
    ) in html
    assert "No failures on the platform's side." in _text(html, "dash-failures-platform")
    upstream = _text(html, "dash-upstream")
    # Three calls audited (the shop fixture's failed attempt and the two above): 65400 and 45009 one each.
    assert "3 calls to WeChat" in upstream
    assert "65400 the merchant has not enabled the new customer service on WeChat (65400) 1 33.3%" in upstream
    assert "45009 a daily quota is spent (45009) 1 33.3%" in upstream
    assert "kf_not_enabled" not in upstream and "quota_exceeded" not in upstream


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
    assert AuditEvent.objects.filter(action="alert.cleared", actor_label="ops_li").exists()
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
    assert AuditEvent.objects.filter(action="alert.cleared", authorizer_appid=shop.appid, actor_label="ops_li").exists()
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


def _status(html: str) -> str:
    match = re.search(r'<p id="dash-status"[^>]*>(.*?)</p>', html, re.S)
    assert match
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


def _tile(html: str, key: str) -> tuple[int, str]:
    match = re.search(rf'<a class="[^"]*" id="tile-{key}" href="([^"]+)" data-count="(\d+)">', html)
    assert match, key
    return int(match.group(2)), html_lib.unescape(match.group(1))


def test_a_platform_with_nothing_to_do_is_healthy_and_every_tile_is_zero(superuser_client, component_ready):
    html = superuser_client.get("/admin/").content.decode()
    assert 'data-healthy="yes"' in html
    assert _status(html) == "Healthy: nothing needs a person right now."
    for key in ("runs", "alerts", "webhooks", "held"):
        assert _tile(html, key)[0] == 0


def test_each_tile_counts_what_needs_a_person_links_to_its_filtered_list_and_the_status_says_why(
    operator_client, shop, make_authorizer
):
    from authorizers import alerts
    from authorizers.models import PlatformAlert
    from cleanup.models import CleanupRule, CleanupRun
    from kfaccounts.models import DeletionRequest
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    rule = CleanupRule.objects.create(name="temps", authorizer=shop, pattern="temp*", mode="delete")
    for status in ("awaiting_approval", "awaiting_approval", "finished"):
        CleanupRun.objects.create(rule=rule, authorizer=shop, status=status, requested_by_kind="schedule")
    alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED)
    alerts.alert_raise(code=PlatformAlert.Code.MERCHANT_GONE, authorizer_appid=shop.appid, message="gone")
    failing, fine = (
        WebhookEndpoint.objects.create(authorizer=shop, url=f"https://hooks.example/{n}", secret_ciphertext="x")
        for n in ("a", "b")
    )
    for endpoint, status, attempts in ((failing, "failed", 8), (failing, "pending", 2), (fine, "succeeded", 1)):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event_type="deletion.finished", payload={}, status=status, attempts=attempts
        )
    DeletionRequest.objects.filter(status="pending").update(reason="platform_held", errcode=61004)

    html = operator_client.get("/admin/").content.decode()
    assert 'data-healthy="no"' in html
    runs, runs_url = _tile(html, "runs")
    alert_count, alerts_url = _tile(html, "alerts")
    webhooks, webhooks_url = _tile(html, "webhooks")
    held, held_url = _tile(html, "held")
    assert (runs, alert_count, webhooks, held) == (2, 2, 1, 1)
    assert "1 of the platform, 1 of merchants" in html
    status = _status(html)
    for reason in (
        "2 cleanup runs awaiting approval",
        "2 open alerts",
        "1 failing webhook endpoint;",
        "1 deletion held",
    ):
        assert reason in status
    # Each link opens the list filtered to exactly those rows.
    for url, expected in ((runs_url, "2 cleanup runs"), (held_url, "1 deletion"), (webhooks_url, "1 webhook delivery")):
        listing = html_lib.unescape(operator_client.get(url).content.decode())
        assert expected in listing, url
    assert "2 platform alerts" in html_lib.unescape(operator_client.get(alerts_url).content.decode())


def test_failures_are_grouped_by_merchant_and_reason_and_a_merchants_typos_do_not_flood_the_page(
    superuser_client, shop, make_authorizer
):
    from django.utils import timezone

    from kfaccounts.models import DeletionRequest

    typo_shop = make_authorizer(nickname="Typo Shop")
    now = timezone.now()
    base = {"status": "failed", "requested_by_kind": "api_key", "finished_at": now}
    DeletionRequest.objects.bulk_create(
        [
            DeletionRequest(
                authorizer=typo_shop, kf_account=f"typo{n}@shop", reason="invalid_kf_account", errcode=65401, **base
            )
            for n in range(300)
        ]
        + [
            DeletionRequest(authorizer=shop, kf_account=f"down{n}@teahouse", reason="upstream_unavailable", **base)
            for n in range(3)
        ]
    )
    html = superuser_client.get("/admin/").content.decode()
    mistakes = _text(html, "dash-failures-merchant")
    assert html.count('data-failure-group="invalid_kf_account"') == 1
    assert (
        "Typo Shop" in mistakes
        and " 300 " in mistakes
        and "no such customer-service account on WeChat (65401)" in mistakes
    )
    assert "Check the name with the merchant" in mistakes
    platform = _text(html, "dash-failures-platform")
    assert "Tea House 茶馆" in platform and " 3 " in platform and "the retries ran out" in platform
    assert "Typo Shop" not in platform
    status = _status(html)
    assert "3 deletions failed on the platform's side in the last 7 days" in status
    assert "301 failed deletions in the last 7 days are merchants' own mistakes" in status


def test_the_dashboard_makes_the_same_number_of_queries_for_3_or_300_failures(
    superuser_client, shop, make_authorizer, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from kfaccounts.models import DeletionRequest

    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get("/admin/").status_code == 200
    others = [make_authorizer(nickname=f"Shop {n}") for n in range(3)]
    DeletionRequest.objects.bulk_create(
        DeletionRequest(
            authorizer=others[n % 3],
            kf_account=f"x{n}@shop",
            status="failed",
            reason=("invalid_kf_account", "kf_not_enabled", "wechat_error")[n % 3],
            requested_by_kind="api_key",
        )
        for n in range(300)
    )
    with CaptureQueriesContext(connection) as many:
        assert superuser_client.get("/admin/").status_code == 200
    # Three more merchants are read for the "merchants by state" card, one query each at most.
    assert len(many) <= len(few) + 3


@pytest.mark.django_db
def test_the_merchant_counts_in_sql_are_the_rules_counts() -> None:
    """At 100,000 merchants the dashboard counts in one aggregate; it must say what judging each
    merchant by the rules (authorizers.policy.eligibility) says, reasons included."""
    import itertools
    from collections import Counter

    from authorizers.models import AccountKind, Authorizer, AuthorizerStatus
    from authorizers.policy import eligibility
    from console.dashboard import REASON_LABELS, merchants_by_state

    now = timezone.now()
    combos = itertools.product(
        list(AuthorizerStatus), [None, 1, 2], list(AccountKind), [None, -1, 0], [[], [2], [1, 6]], [None, 1]
    )
    for n, (status, account_status, kind, verify, func_ids, paused) in enumerate(combos):
        Authorizer.objects.create(
            appid=f"wx{n:016x}",
            status=status,
            account_status=account_status,
            kind=kind,
            verify_type_id=verify,
            func_ids=func_ids,
            quota_paused_until=now + timedelta(hours=1) if paused else None,
        )
    # The reference: each merchant judged in Python, as the dashboard did before it counted in SQL.
    counts = Counter({"eligible": 0, "not_eligible": 0, "revoked": 0, "deactivated": 0, "paused": 0})
    reasons: Counter[str] = Counter()
    for merchant in Authorizer.objects.all():
        if merchant.status in (AuthorizerStatus.REVOKED, AuthorizerStatus.DEACTIVATED):
            counts[merchant.status] += 1
        elif (verdict := eligibility(merchant)).eligible:
            counts["eligible"] += 1
        else:
            counts["not_eligible"] += 1
            reasons.update(reason.code for reason in verdict.reasons)
        counts["paused"] += merchant.quota_paused(now)
    in_sql = merchants_by_state(now)
    assert in_sql["counts"] == counts
    assert sorted(in_sql["reasons"]) == sorted((REASON_LABELS.get(code, code), n) for code, n in reasons.items())
    assert len(reasons) == 4 and counts["eligible"] > 0


@pytest.mark.django_db
def test_failure_groups_beyond_those_shown_are_counted_not_built(make_authorizer) -> None:
    from console.dashboard import FAILURE_GROUPS_SHOWN, failures_grouped
    from kfaccounts.models import DeletionRequest

    merchants = [make_authorizer() for _ in range(FAILURE_GROUPS_SHOWN + 3)]
    DeletionRequest.objects.bulk_create(
        DeletionRequest(
            authorizer=m,
            kf_account=f"kf{n}@x",
            status="failed",
            reason="invalid_kf_account",
            errcode=65401,
            requested_by_kind="api_key",
            finished_at=timezone.now(),
        )
        for n, m in enumerate(merchants)
        for _ in range(1 + (n == 0))  # the first merchant's group is the biggest, so it comes first
    )
    side = failures_grouped(timezone.now())["merchant"]
    assert len(side["groups"]) == FAILURE_GROUPS_SHOWN
    assert side["more"] == 3
    assert side["total"] == len(merchants) + 1
    assert side["groups"][0].authorizer == merchants[0] and side["groups"][0].count == 2
