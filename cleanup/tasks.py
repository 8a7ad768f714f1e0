"""Celery tasks for cleanup rules and housekeeping: ids in, one service call, retry policy here."""

from __future__ import annotations

from celery import shared_task

from audit.services import Actor
from authorizers.tasks import refresh_authorizer_info
from cleanup import housekeeping, services
from kfaccounts.tasks import dispatch_deletions, sync_kf_accounts
from wechat.errors import Transient


def dispatch_run(run_id: int) -> None:
    execute_cleanup_run.apply_async((run_id,))


@shared_task(ignore_result=True)
def fire_cleanup_rule(rule_id: int) -> None:
    """What a rule's PeriodicTask sends."""
    services.cleanup_rule_fire(rule_id=rule_id, dispatch=dispatch_run)


@shared_task(acks_late=True, ignore_result=True)
def execute_cleanup_run(run_id: int) -> None:
    outcome = services.cleanup_run_execute(run_id=run_id, dispatch=dispatch_deletions)
    if outcome.countdown is not None:
        execute_cleanup_run.apply_async((run_id,), countdown=outcome.countdown)


@shared_task(ignore_result=True)
def finish_cleanup_runs() -> None:
    services.cleanup_runs_finish()
    services.cleanup_runs_sweep(dispatch=dispatch_run)


def _reread(authorizer_id: int) -> None:
    refresh_authorizer_info.delay(authorizer_id)


@shared_task(ignore_result=True, autoretry_for=(Transient,), retry_backoff=30, retry_backoff_max=600, max_retries=5)
def reread_merchants() -> None:
    """Nightly: every active merchant's info re-read, then the list reconciled with WeChat's."""
    housekeeping.merchants_reread(dispatch=_reread)
    housekeeping.authorizers_reconcile(actor=Actor.schedule("nightly reconciliation"))


def _resync(authorizer_id: int) -> None:
    sync_kf_accounts.delay(authorizer_id, "schedule", "periodic kf re-sync", "")


@shared_task(ignore_result=True)
def resync_kf_accounts() -> None:
    housekeeping.kf_accounts_resync_all(dispatch=_resync)


@shared_task(ignore_result=True)
def prune_audit_log() -> None:
    housekeeping.audit_retention_apply()


@shared_task(ignore_result=True)
def watch_verify_ticket() -> None:
    housekeeping.verify_ticket_watch()
