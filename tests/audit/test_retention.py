"""Audit retention: old events go in batches, the pruning is itself audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.retention import audit_retention_apply
from audit.services import Actor, audit_record

pytestmark = pytest.mark.django_db


def test_audit_retention_deletes_only_old_events_in_batches(db, settings):
    settings.AUDIT_RETENTION_DAYS = 400
    settings.AUDIT_RETENTION_BATCH = 3
    for n in range(7):
        audit_record(actor=Actor.system("t"), action=AuditAction.DELETION_REQUESTED, subject=str(n))
    audit_record(actor=Actor.system("t"), action=AuditAction.DELETION_CANCELLED)
    AuditEvent.objects.filter(action=AuditAction.DELETION_REQUESTED).update(at=timezone.now() - timedelta(days=401))
    assert audit_retention_apply() == 7
    assert not AuditEvent.objects.filter(action=AuditAction.DELETION_REQUESTED).exists()
    assert AuditEvent.objects.filter(action=AuditAction.DELETION_CANCELLED).exists()
    assert AuditEvent.objects.get(action="audit.pruned").detail["deleted"] == 7
    assert audit_retention_apply() == 0
