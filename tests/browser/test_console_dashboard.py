"""The dashboard answers "is everything fine, and if not, what do I do", in English and Chinese.

Screenshots (var/screenshots/):
- dashboard-healthy-{en,zh}: a platform with nothing to do: the green status line, every tile 0;
- dashboard-attention-{en,zh}: runs awaiting approval, a platform and a merchant alert, a failing
  webhook endpoint, a held deletion and one merchant's 300 mistyped accounts (one row, apart from
  the platform's problems), each tile linking to its filtered list;
- dashboard-tile-runs-{en,zh}: where the "awaiting approval" tile leads.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from authorizers import alerts
from authorizers.models import PlatformAlert
from cleanup.models import CleanupRule, CleanupRun
from kfaccounts.models import DeletionRequest
from tests.browser import chromium
from tests.browser.steps import click, fits, login
from tests.console.conftest import _staff
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = [("en", "en-US"), ("zh", "zh-CN")]


def _tile_count(page, key: str) -> int:
    return int(page.get_attribute(f"#tile-{key}", "data-count"))


@pytest.mark.parametrize(("suffix", "locale"), LANGUAGES)
def test_a_healthy_platform_says_so_in_one_line(live_server, browser, component_ready, suffix, locale):
    _staff("viewer_wang", "viewer")
    with chromium.console_page(browser, locale=locale) as page:
        login(page, live_server, "viewer_wang")
        assert page.get_attribute("#dash-status", "data-healthy") == "yes"
        assert [_tile_count(page, key) for key in ("runs", "alerts", "webhooks", "held")] == [0, 0, 0, 0]
        fits(page)
        chromium.screenshot(page, f"dashboard-healthy-{suffix}")


@pytest.mark.parametrize(("suffix", "locale"), LANGUAGES)
def test_what_needs_a_person_is_on_tiles_that_lead_to_the_filtered_lists(
    live_server, browser, shop, make_authorizer, suffix, locale
):
    _staff("ops_li", "operator")
    rule = CleanupRule.objects.create(name="temps", authorizer=shop, pattern="temp*", mode="delete")
    for _ in range(2):
        CleanupRun.objects.create(
            rule=rule, authorizer=shop, status="awaiting_approval", requested_by_kind="schedule", matched_count=40
        )
    alerts.alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED)
    alerts.alert_raise(code=PlatformAlert.Code.MERCHANT_GONE, authorizer_appid=shop.appid, message="gone")
    endpoint = WebhookEndpoint.objects.create(authorizer=shop, url="https://hooks.example/a", secret_ciphertext="x")
    WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="deletion.finished", payload={}, status="failed", attempts=8
    )
    DeletionRequest.objects.filter(status="pending").update(reason="platform_held", errcode=61004)
    typo_shop = make_authorizer(nickname="Typo Shop 错字店")
    DeletionRequest.objects.bulk_create(
        DeletionRequest(
            authorizer=typo_shop,
            kf_account=f"typo{n}@shop",
            status="failed",
            reason="invalid_kf_account",
            errcode=65401,
            requested_by_kind="api_key",
            finished_at=timezone.now(),
        )
        for n in range(300)
    )

    with chromium.console_page(browser, locale=locale) as page:
        login(page, live_server, "ops_li")
        assert page.get_attribute("#dash-status", "data-healthy") == "no"
        assert [_tile_count(page, key) for key in ("runs", "alerts", "webhooks", "held")] == [2, 2, 1, 1]
        mistakes = page.locator("#dash-failures-merchant [data-failure-group=invalid_kf_account]")
        assert mistakes.count() == 1 and "300" in mistakes.inner_text() and "Typo Shop" in mistakes.inner_text()
        assert "Typo Shop" not in page.inner_text("#dash-failures-platform")
        assert "65400" in page.inner_text("#dash-failures-merchant")  # the shop's own failure, with its hint
        assert "新版客服" in page.inner_text("#dash-failures-merchant")
        fits(page)
        chromium.screenshot(page, f"dashboard-attention-{suffix}")

        click(page, "#tile-runs")
        assert page.locator("#result_list tbody tr").count() == 2
        fits(page)
        chromium.screenshot(page, f"dashboard-tile-runs-{suffix}")
        page.go_back()
        click(page, "#tile-held")
        assert page.locator("#result_list tbody tr").count() == 1
        page.go_back()
        click(page, "#tile-alerts")
        assert page.locator("#result_list tbody tr").count() == 2
        page.go_back()
        click(page, "#tile-webhooks")
        assert page.locator("#result_list tbody tr").count() == 1
