"""The default beat schedule: installed into django-celery-beat, every entry's task registered."""

from __future__ import annotations

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_the_default_schedules_are_installed_into_django_celery_beat_and_stay_editable(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from platform_app.celery import app

    # What DatabaseScheduler.setup_schedule does with CELERY_BEAT_SCHEDULE when beat starts.
    for name, entry in app.conf.beat_schedule.items():
        ModelEntry.from_entry(name, app=app, **entry)
    installed = {t.name: t for t in PeriodicTask.objects.all()}
    for name, task in {
        "sweep-deletions": "kfaccounts.tasks.sweep_deletions",
        "refresh-expiring-tokens": "authorizers.tasks.refresh_expiring_tokens",
        "reconcile-merchants-nightly": "authorizers.tasks.reconcile_merchants",
        "reread-merchants": "authorizers.tasks.reread_merchants",
        "resync-kf-accounts": "kfaccounts.tasks.resync_kf_accounts",
        "audit-retention": "audit.tasks.prune_audit_log",
        "verify-ticket-watchdog": "authorizers.tasks.watch_verify_ticket",
        "finish-cleanup-runs": "cleanup.tasks.finish_cleanup_runs",
        "sweep-webhook-deliveries": "webhooks.tasks.sweep_webhook_deliveries",
    }.items():
        assert installed[name].task == task and installed[name].enabled
    assert installed["reconcile-merchants-nightly"].crontab is not None
    assert installed["reread-merchants"].interval.every == settings.PACED_TICK_SECONDS
    assert installed["verify-ticket-watchdog"].interval.every == settings.VERIFY_TICKET_WATCHDOG_SECONDS
    # Every entry names a task a worker knows (a moved task renamed in one place only would be
    # dropped by the worker as unregistered).
    app.loader.import_default_modules()
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} <= set(app.tasks)
