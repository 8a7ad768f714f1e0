"""Celery tasks for cleanup rules and housekeeping: ids in, one service call, retry policy here."""

from __future__ import annotations

from celery import shared_task

from audit.services import Actor
from cleanup import housekeeping, services
from wechat.errors import Transient
from wechat.retry import Backoff


@shared_task(ignore_result=True)
def fire_cleanup_rule(rule_id: int) -> None:
    """What a rule's PeriodicTask sends."""
    services.cleanup_rule_fire(rule_id=rule_id)


@shared_task(acks_late=True, ignore_result=True)
def execute_cleanup_run(run_id: int) -> None:
    outcome = services.cleanup_run_execute(run_id=run_id)
    if outcome.countdown is not None:
        execute_cleanup_run.apply_async((run_id,), countdown=outcome.countdown)


@shared_task(ignore_result=True)
def finish_cleanup_runs() -> None:
    services.cleanup_runs_finish()
    services.cleanup_runs_sweep()


# The nightly reconciliation retries a transient failure after up to 30 s, 60 s, … 10 min.
RECONCILE_BACKOFF = Backoff(base_seconds=30, cap_seconds=600, jitter=0.5)


@shared_task(bind=True, ignore_result=True, max_retries=5)
def reread_merchants(self) -> None:
    """Nightly: every active merchant's info re-read, then the list reconciled with WeChat's."""
    housekeeping.merchants_reread()
    try:
        housekeeping.authorizers_reconcile(actor=Actor.schedule("nightly reconciliation"))
    except Transient as exc:
        raise self.retry(exc=exc, countdown=RECONCILE_BACKOFF.delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def resync_kf_accounts() -> None:
    housekeeping.kf_accounts_resync_all()


@shared_task(ignore_result=True)
def prune_audit_log() -> None:
    housekeeping.audit_retention_apply()


@shared_task(ignore_result=True)
def watch_verify_ticket() -> None:
    housekeeping.verify_ticket_watch()
