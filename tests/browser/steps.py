"""What every console browser test does: log in, click through to a new page, check the 1366 px fit."""

from __future__ import annotations

from tests.console.conftest import PASSWORD

WIDTH = 1366


def login(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    click(page, "input[type=submit]")


def click(page, selector: str) -> None:
    """Click something that loads a new page, and wait for it."""
    with page.expect_navigation():
        page.click(selector)


def fits(page) -> None:
    """No sideways scrolling at 1366 px: neither the page nor a list's own scroll box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, page.url
    clipped = page.evaluate(
        "Array.from(document.querySelectorAll('#changelist .results, #content-main'))"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
    )
    assert clipped == 0, f"a list scrolls sideways on {page.url}"
