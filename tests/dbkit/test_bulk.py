"""dbkit.insert_many writes exactly the rows the ORM's bulk_create writes, on the suite's database.

On PostgreSQL (CI) that compares the set-based INSERT … SELECT FROM unnest with Django's own
insert, column by column; on SQLite insert_many is bulk_create, and the same tests hold it to that.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from dbkit.bulk import insert_many
from kfaccounts.models import DeletionRequest

pytestmark = pytest.mark.django_db

STAMPS = {"id", "created_at", "updated_at", "at"}


def _columns(rows: list[Any]) -> list[dict[str, Any]]:
    model = type(rows[0])
    stored = {r["id"]: r for r in model.objects.filter(pk__in=[r.pk for r in rows]).values()}
    return [{k: v for k, v in stored[r.pk].items() if k not in STAMPS} for r in rows]


def _orm(model: type[Any], shared: dict[str, Any], varying: dict[str, list[Any]]) -> list[Any]:
    n = len(next(iter(varying.values())))
    return model.objects.bulk_create(
        [model(**shared, **{name: values[i] for name, values in varying.items()}) for i in range(n)]
    )


def test_deletion_rows_with_varying_and_shared_columns_match_the_orm(make_authorizer):
    authorizer = make_authorizer()
    now = timezone.now()
    accounts = [f"kf{i}@shop" for i in range(5)]
    shared = {
        "authorizer": authorizer,
        "requested_by_kind": "api_key",
        "requested_by_id": "7",
        "requested_by_label": "k",
    }

    def varying(prefix: str) -> dict[str, list[Any]]:
        return {
            "kf_account": [prefix + a for a in accounts],
            "status": ["pending", "rejected", "pending", "pending", "rejected"],
            "reason": ["", "invalid_input", "", "", "not_eligible"],
            "errmsg": ["", "not a kf_account", "", "", "uncertified"],
            "dispatched_at": [now, None, now, now, None],
            "finished_at": [None, now, None, None, now],
        }

    ours = insert_many(DeletionRequest, shared=shared, varying=varying("a"))
    theirs = _orm(DeletionRequest, shared, varying("b"))
    strip = [{**row, "kf_account": row["kf_account"][1:]} for row in _columns(ours)]
    assert strip == [{**row, "kf_account": row["kf_account"][1:]} for row in _columns(theirs)]
    # The instances returned are the rows stored: ids in input order, every field as the database has it.
    assert [d.kf_account for d in ours] == ["a" + a for a in accounts]
    for deletion in ours:
        stored = DeletionRequest.objects.get(pk=deletion.pk)
        for field in DeletionRequest._meta.concrete_fields:
            assert getattr(deletion, field.attname) == getattr(stored, field.attname), field.name
        assert deletion._state.adding is False
        assert deletion.authorizer is authorizer  # the related object given, no query to read it


def test_json_and_null_columns_vary_per_row_and_match_the_orm():
    shared = {"actor_kind": "system", "actor_label": "t", "action": "x.y", "authorizer_appid": "wx1"}
    varying: dict[str, list[Any]] = {
        "subject": ["a", "b", "c"],
        "outcome": ["ok", "", "failed"],
        "errcode": [0, None, 65401],
        "detail": [{"deletion_id": 1}, {}, {"nested": {"list": [1, "二"]}, "quote": "it's"}],
    }
    assert _columns(insert_many(AuditEvent, shared=shared, varying=varying)) == _columns(
        _orm(AuditEvent, shared, varying)
    )


@pytest.mark.parametrize("n", [1, 3])
def test_columns_equal_throughout_are_sent_once_and_rows_still_counted(n):
    shared = {"actor_kind": "system", "action": "x.y"}
    varying: dict[str, list[Any]] = {"subject": ["same"] * n, "detail": [{"k": 1}] * n}
    rows = insert_many(AuditEvent, shared=shared, varying=varying)
    assert len(rows) == n == AuditEvent.objects.filter(pk__in=[r.pk for r in rows]).count()
    assert _columns(rows) == _columns(_orm(AuditEvent, shared, varying))


def test_nothing_to_insert_is_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert insert_many(AuditEvent, shared={"action": "x"}, varying={"subject": []}) == []


def test_a_thousand_rows_take_one_statement_on_postgresql_and_the_orms_batches_elsewhere():
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    if connection.vendor == "postgresql":
        expected = 1  # INSERT … SELECT FROM unnest: one array per varying column
    else:  # bulk_create, split at the database's parameter limit
        expected = math.ceil(1000 / connection.ops.bulk_batch_size(fields, [None] * 1000))
    with CaptureQueriesContext(connection) as queries:
        rows = insert_many(AuditEvent, shared={"action": "x"}, varying={"subject": [f"s{i}" for i in range(1000)]})
    inserts = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == expected
    assert [r.subject for r in rows] == [f"s{i}" for i in range(1000)]
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    assert AuditEvent.objects.filter(pk__in=[r.pk for r in rows], action="x").count() == 1000


@pytest.mark.parametrize(
    ("shared", "varying", "message"),
    [
        ({}, {"subject": ["a"], "outcome": ["x", "y"]}, "differ in length"),
        ({"subject": "a"}, {"subject": ["b"]}, "both shared and varying"),
        ({}, {"no_such": ["a"]}, "no column"),
    ],
)
def test_a_call_that_cannot_describe_rows_is_refused(shared, varying, message):
    with pytest.raises(ValueError, match=message):
        insert_many(AuditEvent, shared=shared, varying=varying)
