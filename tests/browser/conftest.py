"""Browser tests: Debian's Chromium driven by Playwright's Python package (its own browser download
cannot run here). Without Chromium on the machine they skip with a visible message, except in CI
(CI=true), where a missing browser is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.browser.chromium import CHROMIUM, MISSING, in_ci
from tests.console.conftest import shop  # noqa: F401  (the console's merchant, for its browser tests)

# The `browser` fixture is in tests/conftest.py: one Chromium per session, shared with tests/e2e.


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists():
        return
    message = MISSING
    if in_ci():
        raise pytest.UsageError(f"CI: {message}; .ci/run installs it, so this is a broken CI machine")
    here = Path(__file__).parent
    skipped = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    for item in skipped:
        item.add_marker(pytest.mark.skip(reason=message))
    if skipped:
        config.issue_config_time_warning(pytest.PytestWarning(f"SKIPPING {len(skipped)} {message}"), stacklevel=2)


@pytest.fixture
def page(browser) -> Iterator[object]:
    with chromium.console_page(browser) as page:
        yield page


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot to var/screenshots/NAME.png (the run's artifacts)."""
    return lambda name: chromium.screenshot(page, name)
