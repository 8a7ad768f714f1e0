"""Issue 15: blast-radius limits are staff policy. A merchant may lower them, never raise them above
the platform's defaults; staff may raise them for one rule (audited), and the rule list shows it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from cleanup.models import CleanupRule, RunStatus
from tests.cleanup.conftest import serve_deletes, serve_kf_list
from tests.console.conftest import client_for

pytestmark = pytest.mark.django_db

RULE = {"name": "temps", "pattern": "temp*", "mode": "delete", "crontab": "30 4 * * *"}
RULES = reverse("admin:cleanup_cleanuprule_changelist")


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop", nickname="Shop")


@pytest.fixture
def client(api_client_for, merchant):
    return api_client_for(merchant)


@pytest.mark.parametrize("limits", [{"max_accounts": 21}, {"max_percent": 51}, {"max_accounts": 10_000}])
def test_a_merchant_cannot_raise_a_limit_above_the_platform_default(client, limits):
    response = client.post("/api/v1/cleanup-rules/", {**RULE, **limits}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "limit_above_platform_default"
    (field,) = limits
    assert "may lower it, never raise it" in " ".join(error["fields"][field])
    assert not CleanupRule.objects.exists()


def test_a_merchant_may_lower_the_limits_and_the_default_is_honoured(client):
    created = client.post("/api/v1/cleanup-rules/", {**RULE, "max_accounts": 5, "max_percent": 10}, format="json")
    assert created.status_code == 201, created.content
    rule = CleanupRule.objects.get()
    assert rule.limits_effective() == (5, 10) and rule.limits_raised_by == ""
    raised = client.patch(f"/api/v1/cleanup-rules/{rule.pk}/", {"max_accounts": 50}, format="json")
    assert raised.status_code == 400 and raised.json()["error"]["code"] == "limit_above_platform_default"
    assert client.patch(f"/api/v1/cleanup-rules/{rule.pk}/", {"max_accounts": 20}, format="json").status_code == 200


def _console_form(rule: CleanupRule, **changes) -> dict:
    form = {
        "name": rule.name,
        "mode": rule.mode,
        "enabled": "on",
        "combine": rule.combine,
        "pattern": rule.pattern,
        "pattern_kind": rule.pattern_kind,
        "schedule_kind": rule.schedule_kind,
        "crontab": rule.crontab,
        "timezone": rule.timezone,
        "max_accounts": "",
        "max_percent": "",
        "listed_accounts-TOTAL_FORMS": "0",
        "listed_accounts-INITIAL_FORMS": "0",
    }
    form.update(changes)
    return form


def test_staff_raise_a_rules_limits_in_the_console_audited_and_shown_and_the_merchant_keeps_or_lowers_them(
    client, merchant, operator, wechat, run_rule
):
    rule_id = client.post("/api/v1/cleanup-rules/", RULE, format="json").json()["id"]
    rule = CleanupRule.objects.get(pk=rule_id)
    console = client_for(operator)
    assert 'data-limits="default"' in console.get(RULES).content.decode()

    saved = console.post(
        reverse("admin:cleanup_cleanuprule_change", args=[rule.pk]),
        _console_form(rule, max_accounts="100", max_percent="90"),
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    rule.refresh_from_db()
    assert (rule.max_accounts, rule.max_percent, rule.limits_raised_by) == (100, 90, operator.username)
    event = AuditEvent.objects.get(action="cleanup_rule.limits_raised")
    assert event.actor_label == operator.username and event.authorizer_appid == merchant.appid
    assert event.detail["after"] == {"max_accounts": 100, "max_percent": 90}
    listing = console.get(RULES).content.decode()
    assert 'data-limits="raised"' in listing and f"raised by {operator.username}" in listing

    # The raised limits apply: 3 of 4 accounts (75 %) is over the default 50 % but under 90 %.
    serve_kf_list(wechat, "temp1@shop", "temp2@shop", "temp3@shop", "staff@shop")
    serve_deletes(wechat)
    assert run_rule(rule).status == RunStatus.FINISHED

    # The merchant changes something else (the limits stay), then lowers one (still allowed).
    assert client.patch(f"/api/v1/cleanup-rules/{rule.pk}/", {"name": "renamed"}, format="json").status_code == 200
    assert client.patch(f"/api/v1/cleanup-rules/{rule.pk}/", {"max_percent": 80}, format="json").status_code == 200
    rule.refresh_from_db()
    assert (rule.max_accounts, rule.max_percent, rule.limits_raised_by) == (100, 80, operator.username)
    assert client.patch(f"/api/v1/cleanup-rules/{rule.pk}/", {"max_percent": 95}, format="json").status_code == 400


def test_a_limit_above_the_default_that_staff_never_raised_is_not_honoured(wechat, merchant, make_rule, run_rule):
    """Rules saved before limits were staff policy may hold a merchant's 10,000 / 100 %: runs use
    the defaults (a '*' rule deleted 30 of 33 accounts with no approval)."""
    rule = make_rule(merchant, pattern="temp*")
    CleanupRule.objects.filter(pk=rule.pk).update(max_accounts=10_000, max_percent=100)  # as stored before
    rule.refresh_from_db()
    assert rule.limits_effective() == (20, 50)
    serve_kf_list(wechat, "temp1@shop", "temp2@shop", "temp3@shop", "staff@shop")
    serve_deletes(wechat)
    run = run_rule(rule)
    assert (run.status, run.limit_accounts, run.limit_percent) == (RunStatus.AWAITING_APPROVAL, 20, 50)
