"""The authorization flow end to end in headless Chromium: the platform's page → WeChat's → the callback.

WeChat is the sandbox, a real process, which checks the Referer the way WeChat does: its page is
served only to a browser that comes from the platform's registered domain. The platform is
pytest-django's live server; the sandbox pushes its verify ticket and the ``authorized`` event there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from authorizers.models import AuthorizationCodeExchange, Authorizer, ComponentCredential
from devtools import procs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox_url(live_server, settings, tmp_path) -> Iterator[str]:
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost"}
    sandbox = procs.Proc(
        "sandbox",
        procs.manage(
            "wechat_sandbox", "--port", str(port), "--platform-url", live_server.url, "--push-retry-delay", "0.2"
        ),
        env,
        tmp_path / "sandbox.log",
    ).start()
    try:
        procs.wait_until(procs.http_ok(f"{url}/sandbox/health"), timeout=30, what="the sandbox")
        settings.WECHAT_API_BASE = settings.WECHAT_MP_BASE = settings.WECHAT_OPEN_BASE = url
        settings.PUBLIC_BASE_URL = live_server.url
        procs.wait_until(
            lambda: ComponentCredential.objects.filter(
                component_appid=django_settings.WECHAT_COMPONENT_APPID, ticket_received_at__isnull=False
            ).exists(),
            timeout=30,
            what="the sandbox's first verify-ticket push",
        )
        yield url
    finally:
        sandbox.stop()


def test_a_merchant_authorizes_through_the_platform_page_in_a_real_browser(
    live_server, sandbox_url, page, screenshot
) -> None:
    # sets=kf: category_id_list 1|6|19, so WeChat's page offers an Official Account only 1 and 6.
    page.goto(f"{live_server.url}/wechat/authorize/?auth_type=1&sets=kf")
    screenshot("authorize-1-platform-page")
    assert page.locator("#authorize-pc").get_attribute("referrerpolicy") == "strict-origin-when-cross-origin"

    # The button is a plain link: the browser sends the platform's origin, and WeChat's page opens.
    with page.expect_navigation():
        page.click("#authorize-pc")
    assert page.url.startswith(f"{sandbox_url}/cgi-bin/componentloginpage?")
    assert page.locator("h1").inner_text().startswith("授权给第三方平台")
    screenshot("authorize-2-wechat-page")
    appid = page.locator("input[name=appid]:checked").get_attribute("value")
    assert appid

    with page.expect_navigation(url=f"{live_server.url}/wechat/authorize/callback/**"):
        page.click("#confirm")
    page.wait_for_load_state()
    screenshot("authorize-3-callback")

    assert page.locator("h1").inner_text() == "Authorization complete"
    merchant = Authorizer.objects.get(appid=appid)
    body = page.locator("body").inner_text()
    assert merchant.appid in body and merchant.nickname in body
    assert merchant.func_ids == [1, 6]  # every set offered is ticked; category_id_list offered these
    assert "available" in body  # a certified Official Account with set 1 or 6
    # The callback and the authorized push carried the same code: it was exchanged once.
    (exchange,) = AuthorizationCodeExchange.objects.all()
    assert exchange.state == "succeeded" and exchange.authorizer_id == merchant.pk


def test_wechats_page_opened_without_the_platform_page_is_refused(live_server, sandbox_url, page) -> None:
    page.goto(f"{live_server.url}/wechat/authorize/")
    link = page.locator("#authorize-pc").get_attribute("href")
    assert link

    # A link pasted into the address bar (or reached by a server-side redirect) carries no Referer.
    response = page.goto(link)

    assert response is not None and response.status == 403
    assert "授权入口页所在域名：空" in page.locator("body").inner_text()
