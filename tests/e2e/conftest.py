"""Fixtures of the end-to-end suite; the harness itself is in harness.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator

import pluggy
import pytest

from tests.e2e import harness
from tests.e2e.harness import Merchant, SandboxClient, Stack

_STACK: Stack | None = None


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    global _STACK
    tmp = tmp_path_factory.mktemp("e2e")
    started = time.monotonic()
    _STACK = harness.start_stack(tmp, settings=harness.E2E_SETTINGS)
    print(
        f"\ne2e stack up in {time.monotonic() - started:.1f}s: web {_STACK.web_url}, sandbox {_STACK.sandbox_url}, "
        f"db {'postgres ' + _STACK.db.name if _STACK.db.is_postgres else 'sqlite'}, broker {_STACK.broker_url}"
    )
    try:
        yield _STACK
    finally:
        harness.stop_stack(_STACK)
        _STACK = None


@pytest.fixture(autouse=True)
def _processes_alive(stack: Stack) -> Iterator[None]:
    stack.check_alive()
    yield


@pytest.fixture
def sandbox(stack: Stack) -> SandboxClient:
    return stack.sandbox


@pytest.fixture
def new_merchant(stack: Stack) -> Callable[..., Merchant]:
    return stack.new_merchant


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, pluggy.Result, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACK is not None and item.get_closest_marker("e2e") is not None:
        report.sections.append(("e2e process logs", _STACK.tails()))
