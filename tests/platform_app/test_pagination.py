"""Every list API pages with the one cursor paginator: a cursor it did not hand out is a 400."""

from __future__ import annotations

import base64

import pytest

from cleanup.models import CleanupRule
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _cursor(position: str) -> str:
    # DRF's cursor: base64 of a query string ("p" is the position of the last row seen).
    return base64.urlsafe_b64encode(f"p={position}".encode()).decode()


@pytest.fixture
def merchant(make_authorizer):
    return make_authorizer()


@pytest.fixture
def client(merchant, api_client_for):
    return api_client_for(merchant)


def _list_urls(merchant) -> list[str]:
    rule = CleanupRule.objects.create(authorizer=merchant, name="r", pattern="kf*", use_list=True)
    endpoint = WebhookEndpoint.objects.create(authorizer=merchant, url="https://hooks.example.com/x")
    return [
        "/api/v1/kf-accounts/",
        "/api/v1/deletions/",
        "/api/v1/cleanup-rules/",
        f"/api/v1/cleanup-rules/{rule.pk}/runs/",
        f"/api/v1/cleanup-rules/{rule.pk}/listed-accounts/",
        "/api/v1/cleanup-runs/",
        "/api/v1/webhooks/",
        f"/api/v1/webhooks/{endpoint.pk}/deliveries/",
    ]


FORGED = [
    "garbage!",  # not base64: DRF itself would answer 404
    _cursor("%00"),  # a NUL byte
    _cursor("x" * 65),  # longer than any kf_account
]
# Positions a kf_account may hold but an id may not.
FORGED_IDS = [_cursor("abc"), _cursor("9" * 40)]


def test_every_list_refuses_forged_cursors_and_follows_its_own(merchant, client):
    for url in _list_urls(merchant):
        for forged in FORGED if url == "/api/v1/kf-accounts/" else FORGED + FORGED_IDS:
            response = client.get(url, {"cursor": forged})
            assert response.status_code == 400, (url, forged, response.content)
            assert response.json()["error"]["code"] == "invalid_cursor", url
        first = client.get(url, {"page_size": 1})
        assert first.status_code == 200, (url, first.content)
        assert set(first.json()) >= {"next", "previous", "results"}
