"""The scale bench's set-based seed stays in step with the schema (a tiny size, on the test database)."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import AuditEvent
from authorizers.models import Authorizer
from authorizers.policy import eligibility
from bench.scale import seed_statements
from kfaccounts.models import DeletionRequest, KfAccount

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the seed is PostgreSQL SQL (generate_series)")
def test_the_seed_writes_rows_the_models_read() -> None:
    with connection.cursor() as cursor:
        for _, sql in seed_statements(merchants=100, kf=3, deletions=10, audit=6):
            cursor.execute(sql)
    assert (Authorizer.objects.count(), KfAccount.objects.count()) == (100, 300)
    assert (DeletionRequest.objects.count(), AuditEvent.objects.count()) == (1000, 600)
    verdicts = [eligibility(a).eligible for a in Authorizer.objects.all()]
    assert 0 < sum(verdicts) < len(verdicts)  # both kinds, so the eligibility filter has work to do
    assert set(DeletionRequest.objects.values_list("status", flat=True)) >= {"succeeded", "failed", "pending"}
    assert AuditEvent.objects.filter(authorizer_appid=Authorizer.objects.get(pk=77).appid).count() == 6
    Authorizer.objects.create(appid="wx_after_the_seed")  # the sequence was moved past the seeded ids


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the seed is PostgreSQL SQL (generate_series)")
def test_the_seed_writes_older_rows_first_as_a_table_fills() -> None:
    """Retention and the dashboard's time ranges read the tables as production fills them: ids in time order."""
    with connection.cursor() as cursor:
        for _, sql in seed_statements(merchants=50, kf=2, deletions=4, audit=6):
            cursor.execute(sql)
    for times in (
        list(DeletionRequest.objects.order_by("id").values_list("created_at", flat=True)),
        list(AuditEvent.objects.order_by("id").values_list("at", flat=True)),
    ):
        assert times == sorted(times)
