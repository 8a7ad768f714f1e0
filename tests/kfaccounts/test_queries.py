"""Database work per request does not grow with the data: list pages and bulk requests."""

from __future__ import annotations

import math
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from kfaccounts.models import DeletionRequest, KfAccount

pytestmark = pytest.mark.django_db

# Authentication (key + authorizer in one query, last_used_at at most once a minute), the page, and
# nothing per row.
LIST_QUERY_BOUND = 4


@pytest.fixture
def busy_merchant(make_authorizer, api_client_for):
    merchant = make_authorizer()
    now = timezone.now()
    KfAccount.objects.bulk_create(
        KfAccount(authorizer=merchant, kf_account=f"kf{i:03d}@shop", kf_id=str(i), last_seen_at=now) for i in range(210)
    )
    DeletionRequest.objects.bulk_create(
        DeletionRequest(
            authorizer=merchant, kf_account=f"kf{i:03d}@shop", status="succeeded", requested_by_kind="system"
        )
        for i in range(210)
    )
    client = api_client_for(merchant)
    client.get("/api/v1/deletions/")  # the first call of a key records last_used_at: not a per-page cost
    return client


@pytest.mark.parametrize("url", ["/api/v1/deletions/", "/api/v1/kf-accounts/"])
@pytest.mark.parametrize("page_size", [1, 100])
def test_list_endpoints_use_a_constant_number_of_queries(busy_merchant, django_assert_max_num_queries, url, page_size):
    with django_assert_max_num_queries(LIST_QUERY_BOUND):
        response = busy_merchant.get(f"{url}?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size
    with django_assert_max_num_queries(LIST_QUERY_BOUND):
        following = busy_merchant.get(response.json()["next"])
    assert len(following.json()["results"]) == page_size


def test_cursor_pages_cover_every_row_once(busy_merchant):
    seen, url = [], "/api/v1/deletions/?page_size=40"
    while url:
        page = busy_merchant.get(url).json()
        seen += [d["id"] for d in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 210
    assert seen == sorted(seen, reverse=True)


def _insert_batches(model, rows: int, batch_size: int | None = None) -> int:
    """How many INSERTs bulk_create needs for ``rows`` rows on this database backend."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    per_insert = connection.ops.bulk_batch_size(fields, [None] * rows)
    if batch_size:
        per_insert = min(per_insert, batch_size)
    return math.ceil(rows / per_insert)


def _bulk(client, count: int, capture) -> tuple[list[str], float, dict]:
    accounts = [f"k{i}@shop{count}" for i in range(count)]
    with CaptureQueriesContext(connection) as queries, capture(execute=False) as callbacks:
        started = time.perf_counter()
        response = client.post("/api/v1/deletions/", {"kf_accounts": accounts}, format="json")
        elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1  # one on-commit dispatch for the whole batch
    return [q["sql"] for q in queries.captured_queries], elapsed, response.json()


def test_bulk_request_of_1000_accounts_answers_202_with_a_constant_number_of_queries(
    make_authorizer, api_client_for, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    client = api_client_for(merchant)
    client.get("/api/v1/deletions/")  # record last_used_at now, so it is not counted below
    small, small_time, _ = _bulk(client, 10, django_capture_on_commit_callbacks)
    big, big_time, body = _bulk(client, 1000, django_capture_on_commit_callbacks)
    print(
        f"\nbulk POST on {connection.vendor}: 10 accounts {small_time * 1000:.1f} ms / {len(small)} queries; "
        f"1000 accounts {big_time * 1000:.1f} ms / {len(big)} queries"
    )
    assert len(body["deletions"]) == 1000
    assert {d["status"] for d in body["deletions"]} == {"pending"}
    assert len({d["id"] for d in body["deletions"]}) == 1000
    assert DeletionRequest.objects.filter(authorizer=merchant).count() == 1010
    assert AuditEvent.objects.filter(action="deletion.requested", authorizer_appid=merchant.appid).count() == 1010

    # Nothing but the multi-row INSERTs depends on the count: no per-account SELECT or UPDATE...
    def others(sqls: list[str]) -> list[str]:
        return [sql.split(" ", 1)[0] for sql in sqls if not sql.startswith("INSERT")]

    assert others(big) == others(small)
    # ...and the INSERTs are as few as the backend allows: one per table on PostgreSQL; on SQLite
    # Django caps a statement at 999 parameters, so a 1,000-row insert takes ~20 statements.
    inserts = _insert_batches(DeletionRequest, 1000) + _insert_batches(AuditEvent, 1000)
    assert len(big) - len(others(big)) == inserts
