"""/api/docs/ renders in Chromium with every request outside this server refused (no internet)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_docs_render_offline(live_server, page, screenshot) -> None:
    outside: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    screenshot("api-docs-offline")
    assert page.locator(".swagger-ui .opblock").count() > 5
    assert "/api/v1/deletions/" in page.locator(".swagger-ui").inner_text()
    assert outside == []
