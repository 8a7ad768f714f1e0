"""Audit retention: events older than AUDIT_RETENTION_DAYS go, in batches (beat's `audit-retention`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_events_prune, audit_record

log = logging.getLogger(__name__)


def audit_retention_apply(*, now: datetime | None = None) -> int:
    """Delete the events older than the retention period; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted = audit_events_prune(older_than=cutoff, batch=settings.AUDIT_RETENTION_BATCH)
    if deleted:
        log.info("audit retention: %d events older than %s deleted", deleted, cutoff.isoformat())
        # Recorded after the deletion, so the record of it is never what it deletes.
        audit_record(
            actor=Actor.system("audit retention"),
            action=AuditAction.AUDIT_PRUNED,
            outcome="ok",
            detail={"deleted": deleted, "before": cutoff.isoformat(), "days": settings.AUDIT_RETENTION_DAYS},
        )
    return deleted
