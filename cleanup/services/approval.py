"""An operator's decision on a run stopped at its blast-radius limit: approve (a follow-up run
deletes at most what was listed) or decline."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from cleanup.dispatch import cleanup_run_send
from cleanup.models import CleanupRun, RunStatus
from cleanup.services.runs import run_announce
from errorkit import DomainError
from webhooks.models import EventType


class RunNotDecidable(DomainError):
    """Only a run awaiting approval can be approved or declined (and only once)."""

    code = "not_decidable"
    status = 409


def _run_decide(run: CleanupRun, status: str, actor: Actor) -> None:
    """Move a run that awaits approval to `status` (approved or declined) and record who decided;
    a conditional UPDATE, so two operators deciding at once cannot both win. Reloads `run`.
    Raises RunNotDecidable if the run no longer awaits approval. Call inside a transaction."""
    now = timezone.now()
    if not CleanupRun.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).update(
        status=status,
        decided_by_label=actor.label[:150],
        decided_at=now,
        finished_at=now,
        updated_at=now,
    ):
        run.refresh_from_db()
        # In the staff's language in the console; the API answers in English (platform_app/api_language.py).
        raise RunNotDecidable(
            gettext("%(merchant)s: run #%(id)d is %(status)s, not awaiting approval")
            % {"merchant": run.authorizer.appid, "id": run.pk, "status": run.get_status_display()}
        )
    run.refresh_from_db()


def cleanup_run_approve(*, run: CleanupRun, actor: Actor) -> CleanupRun:
    """An operator approves a run stopped at its limit: a follow-up run re-syncs and deletes at most
    the accounts this run listed (those that still match)."""
    with transaction.atomic():
        _run_decide(run, RunStatus.APPROVED, actor)
        follow_up = CleanupRun.objects.create(
            rule=run.rule,
            authorizer=run.authorizer,
            dry_run=False,
            trigger="approval",
            requested_by_kind=actor.kind,
            requested_by_label=actor.label[:150],
            approved_from=run,
        )
        audit_record(
            actor=actor,
            action=AuditAction.CLEANUP_RUN_APPROVED,
            authorizer_appid=run.authorizer.appid,
            subject=f"rule {run.rule_id}",
            outcome="approved",
            detail={"run_id": run.pk, "follow_up_run_id": follow_up.pk, "accounts": run.created_count or None},
        )
        cleanup_run_send(follow_up.pk)
    return follow_up


def cleanup_run_decline(*, run: CleanupRun, actor: Actor) -> CleanupRun:
    with transaction.atomic():
        _run_decide(run, RunStatus.DECLINED, actor)
        audit_record(
            actor=actor,
            action=AuditAction.CLEANUP_RUN_DECLINED,
            authorizer_appid=run.authorizer.appid,
            subject=f"rule {run.rule_id}",
            outcome="declined",
            detail={"run_id": run.pk},
        )
        run_announce(run, EventType.RUN_FINISHED)
    return run
