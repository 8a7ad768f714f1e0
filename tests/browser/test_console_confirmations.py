"""Actions that cannot be undone ask first, in English and in Simplified Chinese (Chromium).

Screenshots (var/screenshots/):
- confirm-merchant-page-{en,zh}: a merchant's page, "Deactivate…" red beside the plain "Sync kf accounts";
- confirm-deactivate-{en,zh}: the deactivation page (keys revoked, deletions cancelled, how to undo);
- confirm-issue-key-{en,zh}: issuing an API key (shown once, how to take it back);
- confirm-revoke-key-{en,zh}: revoking a key (never works again);
- confirm-bulk-retry-{en,zh}: retrying failed deletions in bulk (what is retried, what is not, the 65400 hint).
"""

from __future__ import annotations

import pytest

from tests.browser import chromium
from tests.browser.steps import click, fits, login
from tests.console.conftest import _staff

pytestmark = pytest.mark.django_db(transaction=True)

# (file suffix, browser locale, the breadcrumb's first word, what the undo note starts with)
LANGUAGES = [("en", "en-US", "Home", "Can it be undone?"), ("zh", "zh-CN", "首页", "可以撤销吗")]


@pytest.mark.parametrize(("suffix", "locale", "home", "undo"), LANGUAGES)
def test_deactivate_issue_revoke_and_bulk_retry_each_show_their_consequences_first(
    live_server, browser, shop, suffix, locale, home, undo
):
    _staff("root_zhang", is_superuser=True)
    merchant = f"{live_server.url}/admin/authorizers/authorizer/{shop.pk}/change/"
    with chromium.console_page(browser, locale=locale) as page:
        login(page, live_server, "root_zhang")
        page.goto(merchant)
        deactivate = page.locator("button[data-action=deactivate]")
        sync = page.locator("button[data-action=sync_kf_accounts]")
        red, plain = (
            deactivate.evaluate("b => getComputedStyle(b).backgroundColor"),
            sync.evaluate("b => getComputedStyle(b).backgroundColor"),
        )
        assert red == "rgb(186, 33, 33)" and red != plain
        fits(page)
        chromium.screenshot(page, f"confirm-merchant-page-{suffix}")

        # Deactivate: the page lists what happens; "No" goes back and changes nothing.
        click(page, "button[data-action=deactivate]")
        assert home in page.inner_text(".breadcrumbs")
        assert page.locator("#confirm-targets [data-target]").count() == 1
        assert "1" in page.inner_text("#confirm-summary")
        assert page.inner_text("#confirm-undo").startswith(undo)
        assert page.locator("#confirm-action.console-danger").count() == 1
        fits(page)
        chromium.screenshot(page, f"confirm-deactivate-{suffix}")
        click(page, "#confirm-cancel")
        assert page.url == merchant
        shop.refresh_from_db()
        assert shop.status == "active"

        click(page, "button[data-action=issue_api_key]")
        assert page.locator("#confirm-targets [data-target]").count() == 1
        assert shop.api_keys.count() == 1
        fits(page)
        chromium.screenshot(page, f"confirm-issue-key-{suffix}")

        key = shop.api_keys.get()
        page.goto(f"{live_server.url}/admin/authorizers/apikey/{key.pk}/change/")
        click(page, "button[data-action=revoke]")
        assert f"kfp_{key.prefix}_" in page.inner_text("#confirm-targets")
        fits(page)
        chromium.screenshot(page, f"confirm-revoke-key-{suffix}")
        click(page, "#confirm-action")
        key.refresh_from_db()
        assert key.revoked_at is not None

        # Bulk retry from the list: every deletion ticked, only the failed one is retried.
        page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/")
        page.check("#action-toggle")
        page.select_option("select[name=action]", "retry_failed")
        click(page, "button[name=index]")
        assert page.locator("#confirm-targets [data-target]").count() == 1
        assert page.locator("#confirm-skipped [data-skipped]").count() == 2
        assert "新版客服" in page.inner_text("#confirm-targets")  # the 65400 hint
        fits(page)
        chromium.screenshot(page, f"confirm-bulk-retry-{suffix}")
        assert shop.deletions.filter(status="failed").count() == 1
