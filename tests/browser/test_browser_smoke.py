"""The browser harness itself works: Debian's Chromium renders a page served by the test server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_login_page_renders_in_chromium(live_server, page) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    assert page.locator("input[name=username]").is_visible()
    assert page.locator("input[name=password]").is_visible()
