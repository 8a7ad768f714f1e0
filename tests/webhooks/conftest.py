from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.close()


@pytest.fixture
def private_urls_allowed(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
