"""Celery tasks for cleanup rules and runs: ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from cleanup import services


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
