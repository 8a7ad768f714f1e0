"""The staff console on the real stack: Chromium → gunicorn → Celery worker → the sandbox WeChat.

An operator logs in, reads the dashboard, selects two kf accounts of a merchant authorized through
the real flow, deletes them through the confirmation page and watches the deletions list until
both have succeeded; the sandbox no longer has them. Screenshots: var/screenshots/console-e2e-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.browser.chromium import CHROMIUM, MISSING, in_ci
from tests.e2e.harness import Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

PASSWORD = "operator pass phrase 7319"

if not Path(CHROMIUM).exists() and not in_ci():
    pytest.skip(MISSING, allow_module_level=True)  # in CI a missing browser fails (tests/browser/conftest.py)


@pytest.fixture
def console_page(browser) -> Iterator[object]:
    with chromium.console_page(browser) as page:
        yield page


def test_an_operator_deletes_two_kf_accounts_from_the_console_and_wechat_loses_them(stack: Stack, console_page) -> None:
    page = console_page
    merchant = stack.new_merchant(kf=("alice", "bob", "carol"))
    alice, bob, carol = merchant.kf
    assert merchant.api.post("/api/v1/kf-accounts/sync/").status_code == 202
    eventually(
        lambda: merchant.api.get("/api/v1/kf-accounts/").json()["results"],
        lambda rows: len(rows) == 3,
        timeout=30,
        what="the kf accounts to be synced",
    )
    created = stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User; "
        f"u = User.objects.create_user('ops_e2e', password={PASSWORD!r}, is_staff=True); "
        "u.groups.add(Group.objects.get(name='operator'))",
    )
    assert created.returncode == 0, created.stderr
    # localhost, not 127.0.0.1: production cookies are Secure, which Chromium allows over http on localhost.
    base = stack.web_url.replace("127.0.0.1", "localhost")
    mark = stack.sandbox.mark()

    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "ops_e2e")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert "Merchants by state" in page.inner_text("#dash-merchants")
    assert "No verify ticket" not in page.inner_text("#dash-component")  # the sandbox pushes tickets
    chromium.screenshot(page, "console-e2e-dashboard")

    page.goto(f"{base}/admin/kfaccounts/kfaccount/?authorizer__id__exact={merchant.authorizer_id}")
    for account in (alice, bob):
        page.locator("#result_list tr", has_text=account).locator("input.action-select").check()
    page.select_option("select[name=action]", "delete_selected_kf_accounts")
    with page.expect_navigation():
        page.click("button[name=index]")
    assert "2 of the 2 selected kf accounts will be deleted on WeChat." in page.inner_text("#confirm-summary")
    with page.expect_navigation():
        page.click("#confirm-action")
    assert "2 deletions requested" in page.inner_text(".messagelist")

    listing = f"{base}/admin/kfaccounts/deletionrequest/?status__exact=succeeded&q={merchant.alias}"

    def succeeded() -> str:
        page.goto(listing)
        return page.inner_text("#changelist")

    eventually(succeeded, lambda text: alice in text and bob in text, timeout=60, interval=0.5, what="both succeeded")
    assert carol not in page.inner_text("#changelist")
    assert page.evaluate("document.querySelector('#changelist .results').scrollWidth") <= page.evaluate(
        "document.querySelector('#changelist .results').clientWidth + 1"
    ), "the deletions list scrolls sideways at 1366 px"
    chromium.screenshot(page, "console-e2e-deletions-succeeded")
    assert sorted(c["body"]["kf_account"] for c in del_calls(stack.sandbox, merchant.appid, since=mark)) == [alice, bob]
    assert sorted(stack.sandbox.kf_accounts(merchant.appid)) == [carol]
