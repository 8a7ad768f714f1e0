"""Browser tests: Debian's Chromium driven by Playwright's Python package (its own browser download
cannot run here). Without Chromium on the machine they skip with a visible message, except in CI
(CI=true), where a missing browser is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import shop  # noqa: F401  (the console's merchant, for its browser tests)

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach the (closed) internet.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    if _in_ci():
        raise pytest.UsageError(f"CI: {message}; .ci/run installs it, so this is a broken CI machine")
    here = Path(__file__).parent
    skipped = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    for item in skipped:
        item.add_marker(pytest.mark.skip(reason=message))
    if skipped:
        config.issue_config_time_warning(pytest.PytestWarning(f"SKIPPING {len(skipped)} {message}"), stacklevel=2)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; Django's ORM, used by the same tests
    # for setup and assertions, refuses to run while a loop is running unless told it is safe here.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot to var/screenshots/NAME.png (the run's artifacts)."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
