"""API limits: throttling per merchant, a cap on pending deletions, duplicate syncs merged."""

from __future__ import annotations

import pytest

from kfaccounts.models import DeletionRequest
from tests.kfaccounts.conftest import LIST_URL, calls_to

pytestmark = pytest.mark.django_db


def test_the_rate_limit_counts_per_merchant_not_per_api_key(merchant, api_client_for, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"merchant": "3/min"}}
    clients = [api_client_for(merchant) for _ in range(4)]  # four keys of one merchant
    statuses = [c.get("/api/v1/deletions/").status_code for c in clients]
    assert statuses == [200, 200, 200, 429]
    refused = clients[3].get("/api/v1/deletions/")
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0


def test_another_merchant_is_not_throttled_by_the_first(merchant, make_authorizer, api_client_for, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"merchant": "2/min"}}
    first = api_client_for(merchant)
    for _ in range(2):
        first.get("/api/v1/deletions/")
    assert first.get("/api/v1/deletions/").status_code == 429
    assert api_client_for(make_authorizer()).get("/api/v1/deletions/").status_code == 200


def test_a_request_past_the_pending_cap_is_429_with_retry_after_and_stores_nothing(
    merchant, client, settings, django_capture_on_commit_callbacks
):
    settings.DELETION_MAX_PENDING_PER_MERCHANT = 3
    with django_capture_on_commit_callbacks(execute=False):  # nothing runs: they stay pending
        accepted = client.post("/api/v1/deletions/", {"kf_accounts": ["a@shop", "b@shop"]}, format="json")
        refused = client.post("/api/v1/deletions/", {"kf_accounts": ["c@shop", "d@shop"]}, format="json")
    assert accepted.status_code == 202
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_pending"
    assert int(refused["Retry-After"]) > 0
    assert DeletionRequest.objects.count() == 2
    single = client.post("/api/v1/deletions/", {"kf_account": "c@shop"}, format="json")
    assert single.status_code == 202  # 2 + 1 is within the cap


def test_a_sync_requested_while_one_is_queued_joins_it(
    wechat, merchant, client, api_client_for, django_capture_on_commit_callbacks
):
    wechat.get(LIST_URL, json={"kf_list": []})
    second_key = api_client_for(merchant)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = client.post("/api/v1/kf-accounts/sync/")
        second = second_key.post("/api/v1/kf-accounts/sync/")
    assert (first.status_code, first.json()) == (202, {"status": "queued"})
    assert (second.status_code, second.json()) == (202, {"status": "already_queued"})
    assert len(queued) == 1
    queued[0]()  # the worker runs the one queued sync
    assert len(calls_to(wechat, LIST_URL)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/api/v1/kf-accounts/sync/")
    assert again.json() == {"status": "queued"}  # once it started, a new request queues a new sync
    assert len(calls_to(wechat, LIST_URL)) == 2
