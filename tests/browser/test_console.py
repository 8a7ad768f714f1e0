"""The staff console in headless Chromium, as an operator and a viewer use it.

The web app is pytest-django's live server (a thread of this process), so `responses` fakes WeChat
at the HTTP edge for it too, and eager Celery runs each deletion as soon as its request commits:
a deletion the browser asks for has reached its end state when the next page loads.
Screenshots go to var/screenshots/ (console-*.png).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from kfaccounts.models import DeletionRequest
from tests.browser import chromium
from tests.browser.steps import click as _click
from tests.browser.steps import fits as _fits
from tests.browser.steps import login as _login
from tests.console.conftest import _staff
from tests.kfaccounts.conftest import DEL_URL, OK

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_reads_the_dashboard_filters_merchants_and_deletes_two_kf_accounts(
    live_server,
    page,
    screenshot,
    shop,
    make_authorizer,
    wechat,
):
    assert Group.objects.filter(name="operator").exists()
    _staff("ops_li", "operator")
    make_authorizer(nickname="Noodle Bar 面馆", func_ids=[2, 3])
    wechat.post(DEL_URL, json=OK)

    _login(page, live_server, "ops_li")
    assert "Merchants by state" in page.inner_text("#dash-merchants")
    assert "No verify ticket" not in page.inner_text("#dash-component")
    assert "has not enabled the new customer service on WeChat (65400)" in page.inner_text("#dash-failures-merchant")
    _fits(page)
    screenshot("console-dashboard")

    # Merchants: filter to the eligible ones, search, open one.
    _click(page, "#dash-merchants a:text-is('eligible')")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "Tea House 茶馆" in rows.first.inner_text()
    page.fill("#searchbar", "Noodle")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    assert "0 results" in page.inner_text("#changelist")  # Noodle Bar is there, but not eligible
    _click(page, "#changelist-filter a[href*='eligible=no']")
    assert "Noodle Bar" in page.inner_text("#result_list")
    _fits(page)
    page.goto(f"{live_server.url}/admin/authorizers/authorizer/{shop.pk}/change/")
    assert "kf1@teahouse" in page.inner_text("#content")
    assert "kfp_" in page.inner_text("#content")  # its API key, by prefix only
    _fits(page)
    screenshot("console-merchant")

    # Kf accounts of that merchant: tick two, delete them through the confirmation page.
    page.goto(f"{live_server.url}/admin/kfaccounts/kfaccount/?authorizer__id__exact={shop.pk}")
    for account in ("kf1@teahouse", "kf2@teahouse"):
        page.locator("#result_list tr", has_text=account).locator("input.action-select").check()
    page.select_option("select[name=action]", "delete_selected_kf_accounts")
    _fits(page)
    screenshot("console-kf-accounts")
    _click(page, "button[name=index]")
    assert "2 of the 2 selected kf accounts will be deleted on WeChat." in page.inner_text("#confirm-summary")
    screenshot("console-delete-confirmation")
    _click(page, "#confirm-action")
    assert "2 deletions requested" in page.inner_text(".messagelist")

    page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/?status__exact=succeeded&q=teahouse")
    listing = page.inner_text("#result_list")
    _fits(page)
    screenshot("console-deletions")
    assert "kf1@teahouse" in listing and "kf2@teahouse" in listing
    deletions = DeletionRequest.objects.filter(kf_account__in=["kf1@teahouse", "kf2@teahouse"])
    assert sorted(deletions.values_list("status", flat=True)) == ["succeeded", "succeeded"]
    assert {d.requested_by_label for d in deletions} == {"ops_li"}
    assert len(wechat.calls) == 2
    _fits(page)
    page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/{deletions.earliest('id').pk}/change/")
    assert "wechat.kf_delete_called" in page.inner_text("#content")
    screenshot("console-deletion-succeeded")


def test_a_viewer_is_refused_the_same_action(live_server, page, screenshot, shop, wechat):
    _staff("viewer_wang", "viewer")
    _login(page, live_server, "viewer_wang")
    page.goto(f"{live_server.url}/admin/kfaccounts/kfaccount/?authorizer__id__exact={shop.pk}")
    assert "kf1@teahouse" in page.inner_text("#result_list")
    assert page.locator("select[name=action]").count() == 0
    assert page.locator("input.action-select").count() == 0
    # Posting the action anyway (the form an operator would send) does nothing.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{live_server.url}/admin/kfaccounts/kfaccount/",
        form={
            "csrfmiddlewaretoken": token,
            "action": "delete_selected_kf_accounts",
            "index": "0",
            "_selected_action": str(shop.kf_accounts.get(kf_account="kf1@teahouse").pk),
            "confirm": "yes",
        },
        headers={"Referer": page.url},
    )
    assert response.ok
    assert not DeletionRequest.objects.filter(kf_account="kf1@teahouse").exists()
    assert len(wechat.calls) == 0
    page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/{shop.deletions.get(status='failed').pk}/change/")
    assert page.locator("button[data-action=retry_failed]").count() == 0


def test_a_failed_deletion_is_retried_from_its_page(live_server, page, screenshot, shop, wechat):
    _staff("ops_li", "operator")
    wechat.post(DEL_URL, json=OK)
    failed = shop.deletions.get(status="failed")
    _login(page, live_server, "ops_li")
    page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/{failed.pk}/change/")
    assert "65400" in page.inner_text("#content")
    screenshot("console-deletion-failed")
    _click(page, "button[data-action=retry_failed]")
    assert "1 failed deletion will be sent to WeChat again." in page.inner_text("#confirm-summary")
    _click(page, "#confirm-action")
    assert page.url.endswith(f"/admin/kfaccounts/deletionrequest/{failed.pk}/change/")
    assert f"deletion #{failed.pk} sent again" in page.inner_text(".messagelist")
    content = page.inner_text("#content")
    assert re.search(r"Status:?\s*succeeded", content, re.IGNORECASE)
    assert "deletion.retry_requested" in content
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("succeeded", 2)
    _fits(page)
    screenshot("console-deletion-retried")


def test_the_console_in_chinese(live_server, browser, shop):
    _staff("ops_li", "operator")
    with chromium.console_page(browser, locale="zh-CN") as page:
        _login(page, live_server, "ops_li")
        assert "商户状态分布" in page.inner_text("#dash-merchants")
        _fits(page)
        chromium.screenshot(page, "console-dashboard-zh")
        page.goto(f"{live_server.url}/admin/kfaccounts/deletionrequest/")
        assert "删除请求" in page.inner_text("#content")
        _fits(page)
