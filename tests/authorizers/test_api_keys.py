"""Merchant API keys: issued once in plaintext, stored as a digest, checked on every call, revocable."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.api_keys import LAST_USED_RESOLUTION, api_key_actor, api_key_issue, api_key_revoke
from authorizers.models import ApiKey
from kfaccounts.models import DeletionRequest
from tests.conftest import assert_api_key_401

pytestmark = pytest.mark.django_db

# Every merchant endpoint takes the same key; each is tried with every bad one.
URLS = [
    ("get", "/api/v1/authorizer/"),
    ("get", "/api/v1/deletions/"),
    ("post", "/api/v1/deletions/"),
    ("get", "/api/v1/deletions/1/"),
    ("get", "/api/v1/kf-accounts/"),
    ("post", "/api/v1/kf-accounts/sync/"),
    ("delete", "/api/v1/kf-accounts/kf1@shop/"),
]


@pytest.mark.parametrize(("method", "url"), URLS)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Api-Key ",
        "Api-Key garbage",
        "Api-Key kfp_nothere_secret",
        "Api-Key kfp__",
        "Api-Key kfp_\u00e9\u00e9_x",
        "Bearer kfp_abc_def",
        "Api-Key kfp_" + "x" * 5000,
    ],
)
def test_missing_or_garbage_api_key_is_401_with_the_error_envelope(wechat, make_authorizer, method, url, header):
    make_authorizer()
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    assert_api_key_401(
        getattr(client, method)(url, {"kf_account": "kf1@shop"} if method == "post" else None, format="json")
    )
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


def test_a_right_prefix_with_a_wrong_secret_is_401(make_authorizer):
    _, key = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-2]}xx")
    assert_api_key_401(client.get("/api/v1/deletions/"))


@pytest.mark.parametrize(("method", "url"), URLS)
def test_a_revoked_api_key_is_401(wechat, make_authorizer, method, url):
    merchant = make_authorizer()
    api_key, key = api_key_issue(authorizer=merchant, actor=Actor.system("test"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/deletions/").status_code == 200
    api_key_revoke(api_key=api_key, actor=Actor.system("test"))
    assert_api_key_401(
        getattr(client, method)(url, {"kf_account": "kf1@shop"} if method == "post" else None, format="json")
    )
    assert not DeletionRequest.objects.exists()
    assert len(wechat.calls) == 0


def test_an_issued_key_is_shown_once_and_stored_only_as_prefix_and_digest(make_authorizer):
    merchant = make_authorizer()
    api_key, key = api_key_issue(authorizer=merchant, actor=Actor.system("test"), name="shop backend")
    kfp, prefix, secret = key.split("_", 2)
    assert (kfp, prefix) == ("kfp", api_key.prefix)
    assert len(secret) >= 43  # 32 random bytes, URL-safe
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert stored["digest"] == hashlib.sha256(key.encode()).hexdigest()
    assert all(secret not in str(value) for value in stored.values())
    assert (stored["name"], stored["authorizer_id"], stored["revoked_at"]) == ("shop backend", merchant.pk, None)
    event = AuditEvent.objects.get(action="api_key.issued")
    assert (event.authorizer_appid, event.subject, event.actor_label) == (merchant.appid, prefix, "test")
    assert secret not in str(event.detail) + event.subject


def test_two_keys_of_one_merchant_are_different_and_both_work(make_authorizer):
    merchant = make_authorizer()
    (_, first), (_, second) = (api_key_issue(authorizer=merchant, actor=Actor.system("t")) for _ in range(2))
    assert first != second
    for key in (first, second):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        assert client.get("/api/v1/authorizer/").json()["appid"] == merchant.appid


def test_revoking_twice_records_one_revocation(make_authorizer):
    api_key, _ = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    api_key_revoke(api_key=api_key, actor=Actor.system("ops"))
    first = ApiKey.objects.get(pk=api_key.pk).revoked_at
    api_key_revoke(api_key=api_key, actor=Actor.system("ops"))
    assert first is not None and ApiKey.objects.get(pk=api_key.pk).revoked_at == first
    assert AuditEvent.objects.filter(action="api_key.revoked", subject=api_key.prefix).count() == 1


def test_last_use_is_written_at_most_once_a_minute(make_authorizer):
    api_key, key = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/ping/").status_code == 200
    used = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert used is not None
    assert client.get("/api/v1/ping/").status_code == 200
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == used  # within the resolution: no write
    old = used - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=old)
    assert client.get("/api/v1/ping/").status_code == 200
    again = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert again is not None and old + LAST_USED_RESOLUTION < again <= timezone.now()


def test_what_a_key_does_is_audited_under_the_key_not_its_secret(make_authorizer):
    api_key, key = api_key_issue(authorizer=make_authorizer(), actor=Actor.system("test"))
    actor = api_key_actor(api_key)
    assert (actor.kind, actor.id, actor.label) == ("api_key", str(api_key.pk), f"{api_key.prefix}…")
    assert key.split("_", 2)[2] not in actor.label
