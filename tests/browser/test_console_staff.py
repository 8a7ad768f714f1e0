"""Staff management in Chromium, in English and Simplified Chinese: a superuser creates a member
with a role on one page, sees the role in the list, and unlocks a member locked out by wrong passwords.

Screenshots (var/screenshots/):
- staff-add-{en,zh}: the one-page form (username, role with what each may do, password twice);
- staff-list-{en,zh}: the Users list with the role column, the new member, a locked-out member;
- staff-locked-out-{en,zh}: the lock page (how long it lasts, how to unlock, the command);
- staff-unlocked-{en,zh}: the list after "Unlock" (message, no lock left).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from tests.browser import chromium
from tests.browser.steps import click, fits, login
from tests.console.conftest import PASSWORD, _staff

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = [("en", "en-US"), ("zh", "zh-CN")]
# The role column in each language: the catalog's word for "operator" (console/staff.py).
OPERATOR = {"en": "operator", "zh": "操作员"}
NEW_PASSWORD = "plum blossom river 8812"


@pytest.mark.parametrize(("suffix", "locale"), LANGUAGES)
def test_a_superuser_creates_an_operator_in_one_step_and_unlocks_a_locked_out_member(
    live_server, browser, settings, suffix, locale
):
    _staff("root_zhang", is_superuser=True)
    _staff("viewer_wang", "viewer")
    users = f"{live_server.url}/admin/auth/user/"

    with chromium.console_page(browser, locale=locale) as page:
        # The superuser logs in first: a successful login resets the failures of its address
        # (AXES_RESET_ON_SUCCESS with the address tier), and here everyone is 127.0.0.1.
        login(page, live_server, "root_zhang")
        # viewer_wang mistypes the password until the account locks.
        with chromium.console_page(browser, locale=locale) as other:
            for _ in range(settings.AXES_FAILURE_LIMIT):
                login(other, live_server, "viewer_wang", "not the password")
            assert other.locator("#lock-duration").count() == 1
            assert "15" in other.inner_text("#lock-duration")
            assert "axes_reset_username USERNAME" in other.inner_text("#unlock-how")
            fits(other)
            chromium.screenshot(other, f"staff-locked-out-{suffix}")

        page.goto(users + "add/")
        assert page.locator("input[name=role]").count() == 3
        assert page.locator("input[name=is_staff], select[name=user_permissions], select[name=groups]").count() == 0
        page.fill("input[name=username]", "ops_chen")
        page.check("input[name=role][value=operator]")
        page.fill("input[name=password1]", NEW_PASSWORD)
        page.fill("input[name=password2]", NEW_PASSWORD)
        fits(page)
        chromium.screenshot(page, f"staff-add-{suffix}")
        click(page, "input[name=_save]")
        assert page.url == users  # one step: back to the list, not a second page of permissions
        assert "ops_chen" in page.inner_text(".messagelist")
        row = page.locator("#result_list tr", has_text="ops_chen")
        assert row.locator("td.field-role").inner_text() == OPERATOR[suffix]
        locked = page.locator("#result_list tr", has_text="viewer_wang")
        assert locked.locator("[data-locked=yes]").count() == 1
        fits(page)
        chromium.screenshot(page, f"staff-list-{suffix}")

        locked.locator("input.action-select").check()
        page.select_option("select[name=action]", "unlock")
        click(page, "button[name=index]")
        assert "viewer_wang" in page.inner_text(".messagelist")
        assert page.locator("[data-locked=yes]").count() == 0
        fits(page)
        chromium.screenshot(page, f"staff-unlocked-{suffix}")

    user = User.objects.get(username="ops_chen")
    assert list(user.groups.values_list("name", flat=True)) == ["operator"] and user.is_staff
    assert AuditEvent.objects.filter(action="staff.created", subject="ops_chen", actor_label="root_zhang").exists()
    assert AuditEvent.objects.filter(action="staff.unlocked", subject="viewer_wang", outcome="unlocked").exists()
    # Both can log in now: the new operator at once, the unlocked viewer with the right password.
    for username, password in (("ops_chen", NEW_PASSWORD), ("viewer_wang", PASSWORD)):
        with chromium.console_page(browser, locale=locale) as page:
            login(page, live_server, username, password)
            assert page.locator("#dash-status").count() == 1, username
