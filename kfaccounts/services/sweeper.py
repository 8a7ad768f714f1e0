"""Recovering what a crash or a lost message left behind (the beat's ``sweep_deletions``).

Running rows whose lease ran out (their worker died mid-attempt) go back to pending, counted as a
transient failure with the outcome unknown; due pending rows whose message was never sent, or sent
long ago and lost, are sent again. Both read ``DeletionRequest.objects`` (dbkit.leases).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from audit.actions import AuditAction
from authorizers.alerts import platform_unblocked
from kfaccounts.dispatch import deletions_send
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus
from kfaccounts.services import transitions
from kfaccounts.services.transitions import RetryPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    leases_expired: int
    resent: int


def deletions_sweep(
    *, policy: RetryPolicy, stale_after: timedelta = timedelta(minutes=2), batch: int = 2000
) -> SweepResult:
    """Recover what a crash left behind: running rows whose lease expired, pending rows never sent."""
    now = timezone.now()
    expired = 0
    for deletion in DeletionRequest.objects.select_related("authorizer").expired(now)[:batch]:
        # The worker died mid-attempt: WeChat may or may not have deleted the account.
        failures = deletion.transient_failures + 1
        if failures >= policy.max_transient_failures:
            transitions.finish(
                deletion,
                DeletionStatus.FAILED,
                DeletionReason.UPSTREAM_UNAVAILABLE,
                errmsg="the worker stopped during every attempt",
                transient_failures=failures,
                outcome_unknown=True,
            )
        elif transitions.move(
            deletion,
            status=DeletionStatus.PENDING,
            reason=DeletionReason.RETRY_SCHEDULED,
            next_attempt_at=None,
            lease_expires_at=None,
            dispatched_at=None,
            transient_failures=failures,
            outcome_unknown=True,
        ):
            transitions.audit_transition(
                deletion,
                AuditAction.DELETION_LEASE_EXPIRED,
                DeletionReason.RETRY_SCHEDULED,
                errcode=None,
                errmsg="the worker did not finish the attempt in time",
                rid=None,
                due=now,
                transient_failures=failures,
            )
        expired += 1
    due = list(DeletionRequest.objects.unsent(now, stale_after).order_by("id").values_list("pk", flat=True)[:batch])
    if due:
        DeletionRequest.objects.mark_sent(due, now)
        deletions_send(due)
    if expired or due:
        log.info("deletion sweep: %d leases expired, %d re-sent", expired, len(due))
    return SweepResult(leases_expired=expired, resent=len(due))


def deletions_resume_held(component_appid: str | None = None) -> int:
    """The platform is no longer blocked: every deletion it held is due now and its merchant's batch
    sent (``component_appid`` None: every platform's; deletions another platform holds stay held).

    Held deletions otherwise look again only at their re-check time (PLATFORM_HOLD_RECHECK) and then
    wait for a sweep; an operator who fixed the whitelist sees them run at once.
    """
    now = timezone.now()
    held = DeletionRequest.objects.filter(status=DeletionStatus.PENDING, reason=DeletionReason.PLATFORM_HELD)
    if component_appid is not None:
        held = held.filter(authorizer__platform__component_appid=component_appid)
    authorizer_ids = list(held.order_by().values_list("authorizer_id", flat=True).distinct())
    resumed = held.update(next_attempt_at=None, dispatched_at=now, updated_at=now)
    for authorizer_id in authorizer_ids:
        deletions_send(authorizer_id=authorizer_id)
    if resumed:
        log.info("platform unblocked: %d held deletions of %d merchants sent", resumed, len(authorizer_ids))
    return resumed


@receiver(platform_unblocked, dispatch_uid="kfaccounts-resume-held")
def _resume_held_on_unblock(sender: Any, component_appid: str | None = None, **_: Any) -> None:
    deletions_resume_held(component_appid)
