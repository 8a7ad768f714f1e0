"""Celery tasks of the audit app: the retention beat entry."""

from __future__ import annotations

from celery import shared_task

from audit.retention import audit_retention_apply


@shared_task(ignore_result=True)
def prune_audit_log() -> None:
    audit_retention_apply()
