"""What staff do to one deletion from the console: cancel a pending one, retry a failed one.

Also kfaccounts' part of deactivating a merchant (authorizers.deactivation): its pending deletions
are cancelled like any cancel, through the ``authorizer_deactivating`` signal.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.deactivation import authorizer_deactivating
from authorizers.models import Authorizer
from authorizers.policy import NotEligible, eligibility
from errorkit import DomainError
from kfaccounts.dispatch import deletions_send
from kfaccounts.models import DeletionRequest, DeletionStatus
from kfaccounts.services import transitions

# What the merchant reads (API, webhooks) about a deletion staff withdrew: no staff member's name.
CANCELLED_BY_STAFF = "cancelled by staff"


class DeletionNotCancellable(DomainError):
    """Only a pending deletion can be cancelled: a running attempt may already have reached WeChat."""

    code = "not_cancellable"
    status = 409


class DeletionNotRetryable(DomainError):
    """Only a failed deletion can be retried, and only while no other deletion of the account is active."""

    code = "not_retryable"
    status = 409


def deletion_cancel(*, deletion: DeletionRequest, actor: Actor) -> DeletionRequest:
    """pending → cancelled, in one conditional UPDATE: a worker that claimed it first wins."""
    now = timezone.now()
    with transaction.atomic():
        moved = DeletionRequest.objects.filter(pk=deletion.pk, status=DeletionStatus.PENDING).update(
            status=DeletionStatus.CANCELLED,
            finished_at=now,
            next_attempt_at=None,
            lease_expires_at=None,
            dispatched_at=None,
            errmsg=CANCELLED_BY_STAFF,
            updated_at=now,
        )
        deletion.refresh_from_db()
        if not moved:
            raise DeletionNotCancellable(
                f"{deletion.authorizer.appid} {deletion.kf_account}: deletion #{deletion.pk} is {deletion.status}, "
                "only a pending deletion can be cancelled"
            )
        audit_record(
            actor=actor,
            action=AuditAction.DELETION_CANCELLED,
            authorizer_appid=deletion.authorizer.appid,
            subject=deletion.kf_account,
            outcome=DeletionStatus.CANCELLED,
            detail={"deletion_id": deletion.pk},
        )
        transitions.announce_finished(deletion, DeletionStatus.CANCELLED, "", None, deletion.errmsg, now)
    return deletion


def deletion_retry(*, deletion: DeletionRequest, actor: Actor) -> DeletionRequest:
    """failed → pending on the same row (its attempts and audit trail stay), sent after commit.

    The merchant must still be eligible. ``outcome_unknown`` is kept: if an earlier attempt may have
    deleted the account, a 65401 on the retry still means it is gone, as asked.
    """
    authorizer = deletion.authorizer
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        audit_record(
            actor=actor,
            action=AuditAction.DELETION_RETRY_REFUSED,
            authorizer_appid=authorizer.appid,
            subject=deletion.kf_account,
            outcome="not_eligible",
            detail={"deletion_id": deletion.pk, "reasons": [r.code for r in verdict.reasons]},
        )
        raise NotEligible(verdict)
    now = timezone.now()
    try:
        with transaction.atomic():
            moved = DeletionRequest.objects.filter(pk=deletion.pk, status=DeletionStatus.FAILED).update(
                status=DeletionStatus.PENDING,
                reason="",
                transient_failures=0,
                next_attempt_at=None,
                lease_expires_at=None,
                finished_at=None,
                dispatched_at=now,
                updated_at=now,
            )
            if moved:
                audit_record(
                    actor=actor,
                    action=AuditAction.DELETION_RETRY_REQUESTED,
                    authorizer_appid=authorizer.appid,
                    subject=deletion.kf_account,
                    outcome=DeletionStatus.PENDING,
                    detail={"deletion_id": deletion.pk, "previous_reason": deletion.reason},
                )
                deletions_send([deletion.pk])
    except IntegrityError:
        raise DeletionNotRetryable(
            f"{authorizer.appid} {deletion.kf_account}: another deletion of this account is already pending or running"
        ) from None
    deletion.refresh_from_db()
    if not moved:
        raise DeletionNotRetryable(
            f"{authorizer.appid} {deletion.kf_account}: deletion #{deletion.pk} is {deletion.status}, "
            "only a failed deletion can be retried"
        )
    return deletion


@receiver(authorizer_deactivating, dispatch_uid="kfaccounts-cancel-pending")
def _cancel_pending_on_deactivation(sender: Any, *, authorizer: Authorizer, actor: Actor, **_: Any) -> list[int]:
    """Cancel the deactivated merchant's pending deletions (audited and announced like any cancel)."""
    cancelled: list[int] = []
    for deletion in DeletionRequest.objects.filter(authorizer=authorizer, status=DeletionStatus.PENDING):
        try:
            deletion_cancel(deletion=deletion, actor=actor)
        except DeletionNotCancellable:
            continue  # a worker claimed it meanwhile: it finishes (refused, as no longer eligible)
        cancelled.append(deletion.pk)
    return cancelled
