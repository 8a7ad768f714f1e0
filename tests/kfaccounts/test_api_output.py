"""What a deletion reads as in the API: the fast rendering equals DRF's field-by-field one."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework import serializers

from kfaccounts.api import DeletionSerializer
from kfaccounts.models import DeletionRequest

pytestmark = pytest.mark.django_db


def test_a_deletion_renders_exactly_as_the_generic_model_serializer_would(merchant):
    now = timezone.now()
    rows = [
        DeletionRequest.objects.create(authorizer=merchant, kf_account="kf1@shop", requested_by_kind="system"),
        DeletionRequest.objects.create(
            authorizer=merchant,
            kf_account="kf2@shop",
            status="failed",
            reason="invalid_kf_account",
            errcode=65401,
            errmsg="invalid kf_account",
            attempts=1,
            finished_at=now,
            requested_by_kind="system",
        ),
        DeletionRequest.objects.create(
            authorizer=merchant,
            kf_account="kf3@shop",
            status="succeeded",
            errcode=0,
            errmsg="ok",
            attempts=2,
            finished_at=now.replace(microsecond=0),
            requested_by_kind="system",
        ),
    ]
    for row in DeletionRequest.objects.filter(pk__in=[r.pk for r in rows]):
        fast = DeletionSerializer(row).data
        generic = serializers.ModelSerializer.to_representation(DeletionSerializer(row), row)
        assert dict(fast) == dict(generic)
        assert list(fast) == DeletionSerializer.Meta.fields
