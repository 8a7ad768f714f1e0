"""An oversized body anywhere under /api/ answers 413 with the API's error envelope (issue 15)."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings

from kfaccounts.models import DeletionRequest

SIX_MB = 6 * 1024 * 1024


def _oversized() -> bytes:
    # Valid JSON, so nothing but its size is wrong with it.
    return b'{"kf_accounts": ["' + b"a" * SIX_MB + b'"]}'


def _assert_413(response) -> None:
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "body_too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in error["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_an_oversized_body_is_a_json_413_on_every_api_url(make_authorizer, api_client_for, settings, debug):
    settings.DEBUG = debug  # in debug Django's own answer was the technical page with the settings
    client = api_client_for(make_authorizer())
    body = _oversized()
    for url in ("/api/v1/deletions/", "/api/v1/cleanup-rules/", "/api/v1/webhooks/", "/api/v1/no-such-thing/"):
        response = client.post(url, body, content_type="application/json")
        _assert_413(response)
        assert b"SECRET_KEY" not in response.content
    # Without a key too: the size is refused before anything else is looked at.
    from rest_framework.test import APIClient

    _assert_413(APIClient().post("/api/v1/deletions/", body, content_type="application/json"))
    assert not DeletionRequest.objects.exists()


@pytest.mark.django_db
def test_a_body_within_the_limit_is_still_read(make_authorizer, api_client_for):
    client = api_client_for(make_authorizer())
    response = client.post("/api/v1/deletions/", b"{" + b" " * 1024 + b"}", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_input"


@pytest.mark.django_db(transaction=True)
def test_a_real_six_megabyte_upload_over_http_gets_the_envelope(live_server, make_authorizer, api_client_for):
    from audit.services import Actor
    from authorizers.api_keys import api_key_issue

    _, key = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    response = requests.post(
        f"{live_server.url}/api/v1/deletions/",
        data=_oversized(),
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "body_too_large"
