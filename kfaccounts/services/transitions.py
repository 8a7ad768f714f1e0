"""A claimed deletion's way out of ``running``: one function per outcome, each audited and announced.

Every transition is a conditional UPDATE through ``DeletionRequest.objects.release`` (dbkit.leases):
it happens only while this worker still holds the claim, so a row a sweeper took back is never
written twice. Finished deletions are announced to the merchant's webhooks after commit.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.db.models import F, Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record, merchant_label
from authorizers.alerts import merchant_error_seen
from authorizers.dispatch import authorizer_info_refresh_send
from authorizers.models import Authorizer
from authorizers.revocation import authorizer_revoke
from dbkit.leases import Lease, Next
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus
from webhooks.models import EventType
from webhooks.services import webhook_event_enqueue, webhook_events_enqueue
from wechat import errors
from wechat.retry import Backoff

log = logging.getLogger(__name__)

# WeChat's daily quotas reset at midnight, China Standard Time.
QUOTA_TIMEZONE = ZoneInfo("Asia/Shanghai")

# How long a held deletion waits before it looks again whether the platform alert was cleared.
PLATFORM_HOLD_RECHECK = timedelta(minutes=1)
# A merchant's held deletions look again this often: one of them is sent as the probe.
MERCHANT_HOLD_RECHECK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RetryPolicy(Backoff):
    """The deletion state machine's retries: the backoff, how many transient failures, the claim's lease.

    Owned by the task that passes it in (tasks.retry_policy reads it from the settings).
    """

    max_transient_failures: int = 5
    lease: Lease = field(default_factory=lambda: Lease(seconds=60))


class Failure(TypedDict):
    """What WeChat said, as the deletion row and its audit event keep it."""

    errcode: int | None
    errmsg: str
    rid: str | None


def move(deletion: DeletionRequest, **changes: object) -> bool:
    """Leave `running` only if we still hold the claim: a sweeper may have taken an expired lease."""
    return DeletionRequest.objects.release(deletion, **changes)


def on_wechat_error(
    deletion: DeletionRequest, exc: errors.WeChatError, policy: RetryPolicy, *, outcome_unknown: bool
) -> Next:
    failed = Failure(errcode=exc.errcode, errmsg=exc.errmsg, rid=exc.rid)
    if isinstance(exc, errors.InvalidKfAccount):
        if deletion.outcome_unknown:
            # An earlier attempt may have deleted it before we lost the answer: it is gone, as asked.
            finish(deletion, DeletionStatus.SUCCEEDED, DeletionReason.ALREADY_GONE, **failed)
        else:
            finish(deletion, DeletionStatus.FAILED, DeletionReason.INVALID_KF_ACCOUNT, **failed)
    elif isinstance(exc, errors.KfNotEnabled):
        finish(deletion, DeletionStatus.FAILED, DeletionReason.KF_NOT_ENABLED, **failed)
    elif isinstance(exc, errors.PermissionNotGranted):
        finish(deletion, DeletionStatus.FAILED, DeletionReason.PERMISSION_DENIED, **failed)
        authorizer_info_refresh_send(authorizer_id=deletion.authorizer_id)
    elif isinstance(exc, errors.AuthorizationRevoked):
        authorizer_revoke(
            appid=deletion.authorizer.appid,
            actor=Actor.system("deletions"),
            cause=exc,
            platform=deletion.authorizer.platform,
        )
        finish(deletion, DeletionStatus.FAILED, DeletionReason.AUTHORIZATION_REVOKED, **failed)
    elif isinstance(exc, errors.QuotaExceeded):
        now = timezone.now()
        until = next_quota_reset(now)
        newly = Authorizer.objects.filter(pk=deletion.authorizer_id).filter(
            Q(quota_paused_until__isnull=True) | Q(quota_paused_until__lte=now)
        )
        if newly.update(quota_paused_until=until):
            # Once per pause, however many calls of a batch saw it: the merchant waits for midnight.
            # A daily count says nothing about pace: nothing is learned from it (docs/wechat.md §12).
            audit_record(
                actor=Actor.system("deletions"),
                action=AuditAction.AUTHORIZER_QUOTA_PAUSED,
                authorizer_appid=deletion.authorizer.appid,
                outcome="paused",
                errcode=exc.errcode,
                errmsg=exc.errmsg,
                rid=exc.rid,
                detail={"until": until.isoformat()},
            )
        else:
            until = (
                Authorizer.objects.filter(pk=deletion.authorizer_id)
                .values_list("quota_paused_until", flat=True)
                .first()
                or until
            )
        deletion.authorizer.quota_paused_until = until
        defer_for_quota(deletion, until, counted=True, **failed)
    elif isinstance(exc, errors.MinuteQuotaExceeded):
        return defer_to_next_minute(deletion, counted=True, **failed)
    elif isinstance(exc, errors.PlatformBlocked):
        hold_for_platform(deletion, counted=True, **failed)  # the alert is raised where it was seen
    elif isinstance(exc, (errors.MerchantBlocked, errors.RefreshTokenInvalid)):
        merchant_error_seen(
            authorizer_appid=deletion.authorizer.appid,
            error=exc,
            component_appid=deletion.authorizer.platform.component_appid,
        )
        if isinstance(exc, errors.ApiBanned):
            finish(deletion, DeletionStatus.FAILED, DeletionReason.API_BANNED, **failed)
        elif isinstance(exc, errors.AccountRestricted):
            finish(deletion, DeletionStatus.FAILED, DeletionReason.ACCOUNT_RESTRICTED, **failed)
        else:  # 40164/40090 or an unrecovered 61023: fixable, so held for the merchant
            hold_for_merchant(deletion, counted=True, **failed)
    elif isinstance(exc, (errors.Transient, errors.TokenInvalid)):
        return retry_later(deletion, policy, outcome_unknown=outcome_unknown, **failed)
    else:
        finish(deletion, DeletionStatus.FAILED, DeletionReason.WECHAT_ERROR, **failed)
    return Next()


def next_minute(now: datetime | None = None) -> datetime:
    """A moment just into the next wall-clock minute, spread over a few seconds (45011's "retry next minute")."""
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Past the claim's early tolerance (2 s), so no early claim lands in the minute that refused.
    return start + timedelta(seconds=random.uniform(2.5, 6))


def defer_to_next_minute(
    deletion: DeletionRequest, *, counted: bool, errcode: int | None = None, errmsg: str = "", rid: str | None = None
) -> Next:
    """45011: pending again in the next minute. Not a failure: transient_failures is not counted."""
    due = next_minute()
    if not _back_to_pending(
        deletion,
        reason=DeletionReason.MINUTE_QUOTA,
        due=due,
        counted=counted,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
        dispatched_at=due,  # the countdown below sends it; the sweeper need not
    ):
        return Next()
    audit_transition(
        deletion,
        AuditAction.DELETION_DEFERRED,
        DeletionReason.MINUTE_QUOTA,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
        due=due,
    )
    return Next(countdown=max(0.0, (due - timezone.now()).total_seconds()))


def retry_later(
    deletion: DeletionRequest,
    policy: RetryPolicy,
    *,
    errcode: int | None,
    errmsg: str,
    rid: str | None,
    outcome_unknown: bool,
) -> Next:
    """A transient failure: pending again after the policy's backoff, or failed once they are spent."""
    failures = deletion.transient_failures + 1
    if failures >= policy.max_transient_failures:
        finish(
            deletion,
            DeletionStatus.FAILED,
            DeletionReason.UPSTREAM_UNAVAILABLE,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
            transient_failures=failures,
            outcome_unknown=deletion.outcome_unknown or outcome_unknown,
        )
        return Next()
    delay = policy.delay(failures)
    due = timezone.now() + timedelta(seconds=delay)
    moved = move(
        deletion,
        status=DeletionStatus.PENDING,
        reason=DeletionReason.RETRY_SCHEDULED,
        errcode=errcode,
        errmsg=(errmsg or "")[:255],
        rid=rid or "",
        transient_failures=failures,
        next_attempt_at=due,
        dispatched_at=due,
        lease_expires_at=None,
        outcome_unknown=deletion.outcome_unknown or outcome_unknown,
    )
    if not moved:
        return Next()
    audit_transition(
        deletion,
        AuditAction.DELETION_RETRY_SCHEDULED,
        DeletionReason.RETRY_SCHEDULED,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
        due=due,
        transient_failures=failures,
    )
    return Next(countdown=delay)


def defer_for_quota(
    deletion: DeletionRequest,
    until: datetime,
    *,
    counted: bool,
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
) -> None:
    # No task is sent now: the sweeper sends it once the quota has reset (hours, not seconds).
    if _back_to_pending(
        deletion,
        reason=DeletionReason.QUOTA_EXHAUSTED,
        due=until,
        counted=counted,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
    ):
        audit_transition(
            deletion,
            AuditAction.DELETION_DEFERRED,
            DeletionReason.QUOTA_EXHAUSTED,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
            due=until,
        )


def _back_to_pending(
    deletion: DeletionRequest,
    *,
    reason: str,
    due: datetime,
    counted: bool,
    errcode: int | None,
    errmsg: str,
    rid: str | None,
    dispatched_at: datetime | None = None,
) -> bool:
    """Return a claimed row to pending until ``due`` without failing it; an attempt that never
    reached WeChat (``counted`` false) is given back and keeps the previous answer."""
    return move(
        deletion,
        status=DeletionStatus.PENDING,
        reason=reason,
        errcode=errcode if counted else deletion.errcode,
        errmsg=(errmsg or deletion.errmsg)[:255],
        rid=rid or deletion.rid,
        next_attempt_at=due,
        dispatched_at=dispatched_at,
        lease_expires_at=None,
        attempts=F("attempts") - (0 if counted else 1),
    )


def hold_for_platform(
    deletion: DeletionRequest, *, counted: bool, errcode: int | None = None, errmsg: str = "", rid: str | None = None
) -> None:
    """Back to pending, neither failed nor counted as a transient failure: the platform is blocked."""
    due = timezone.now() + PLATFORM_HOLD_RECHECK
    already_held = deletion.reason == DeletionReason.PLATFORM_HELD
    if (
        _back_to_pending(
            deletion,
            reason=DeletionReason.PLATFORM_HELD,
            due=due,
            counted=counted,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
        )
        and not already_held
    ):
        audit_transition(
            deletion,
            AuditAction.DELETION_HELD,
            DeletionReason.PLATFORM_HELD,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
            due=due,
        )


def hold_for_merchant(
    deletion: DeletionRequest, *, counted: bool, errcode: int | None = None, errmsg: str = "", rid: str | None = None
) -> None:
    """Back to pending, not failed: this merchant is blocked (its alert says why and what to do)."""
    due = timezone.now() + MERCHANT_HOLD_RECHECK
    already_held = deletion.reason == DeletionReason.MERCHANT_HELD
    if (
        _back_to_pending(
            deletion,
            reason=DeletionReason.MERCHANT_HELD,
            due=due,
            counted=counted,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
        )
        and not already_held
    ):
        audit_transition(
            deletion,
            AuditAction.DELETION_HELD,
            DeletionReason.MERCHANT_HELD,
            errcode=errcode,
            errmsg=errmsg,
            rid=rid,
            due=due,
        )


def merchant_hold_release(*, authorizer_id: int) -> int:
    """The merchant's blocker cleared: its held deletions are due now (the caller sends its batch)."""
    now = timezone.now()
    return DeletionRequest.objects.filter(
        authorizer_id=authorizer_id, status=DeletionStatus.PENDING, reason=DeletionReason.MERCHANT_HELD
    ).update(next_attempt_at=now, dispatched_at=None, updated_at=now)


def finish(
    deletion: DeletionRequest,
    status: str,
    reason: str,
    *,
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    **extra: object,
) -> None:
    """A terminal state for a claimed row, its audit event, and the merchant's webhook event."""
    finished_at = timezone.now()
    if move(
        deletion,
        status=status,
        reason=reason,
        errcode=errcode,
        errmsg=(errmsg or "")[:255],
        rid=rid or "",
        finished_at=finished_at,
        next_attempt_at=None,
        lease_expires_at=None,
        **extra,
    ):
        audit_record(
            actor=Actor.system("deletions"),
            action=AuditAction(f"deletion.{status}"),
            authorizer_appid=deletion.authorizer.appid,
            subject=deletion.kf_account,
            outcome=reason or status,
            errcode=errcode,
            errmsg=errmsg or "",
            rid=rid,
            detail={"deletion_id": deletion.pk},
        )
        announce_finished(deletion, status, reason, errcode, errmsg, finished_at)


def announce_finished(
    deletion: DeletionRequest, status: str, reason: str, errcode: int | None, errmsg: str, finished_at: datetime
) -> None:
    """The "deletion finished" hook: the merchant's webhooks get an event, sent once this has committed."""
    data = _finished_event(deletion, status, reason, errcode, errmsg, finished_at)
    try:
        webhook_event_enqueue(
            authorizer_id=deletion.authorizer_id,
            authorizer_appid=deletion.authorizer.appid,
            event_type=EventType.DELETION_FINISHED,
            data=data,
        )
    except Exception:  # a webhook problem must never fail or retry a finished deletion
        log.exception("could not record the deletion.finished webhook event for deletion %s", deletion.pk)


def announce_finished_many(deletions: list[DeletionRequest], finished_at: datetime) -> None:
    """The same hook for a batch's successes (one merchant): one look for its webhook endpoints."""
    first = deletions[0]
    try:
        webhook_events_enqueue(
            authorizer_id=first.authorizer_id,
            authorizer_appid=first.authorizer.appid,
            event_type=EventType.DELETION_FINISHED,
            data=[_finished_event(d, DeletionStatus.SUCCEEDED, "", 0, "ok", finished_at) for d in deletions],
        )
    except Exception:  # a webhook problem must never fail or retry a finished deletion
        log.exception("could not record the deletion.finished webhook events for %d deletions", len(deletions))


def _finished_event(
    deletion: DeletionRequest, status: str, reason: str, errcode: int | None, errmsg: str, finished_at: datetime
) -> dict[str, Any]:
    return {
        "deletion": {
            "id": deletion.pk,
            "kf_account": deletion.kf_account,
            "status": status,
            "reason": reason,
            "errcode": errcode,
            "errmsg": (errmsg or "")[:255],
            "attempts": deletion.attempts,
            "created_at": deletion.created_at.isoformat(),
            "finished_at": finished_at.isoformat(),
            "requested_by": {
                "kind": deletion.requested_by_kind,
                "label": merchant_label(deletion.requested_by_kind, deletion.requested_by_label),
            },
        }
    }


def audit_transition(
    deletion: DeletionRequest,
    action: AuditAction,
    outcome: str,
    *,
    errcode: int | None,
    errmsg: str,
    rid: str | None,
    due: datetime,
    **detail: object,
) -> None:
    audit_record(
        actor=Actor.system("deletions"),
        action=action,
        authorizer_appid=deletion.authorizer.appid,
        subject=deletion.kf_account,
        outcome=outcome,
        errcode=errcode,
        errmsg=errmsg or "",
        rid=rid,
        detail={"deletion_id": deletion.pk, "attempt": deletion.attempts, "due": due.isoformat(), **detail},
    )


def next_quota_reset(now: datetime | None = None) -> datetime:
    local = (now or timezone.now()).astimezone(QUOTA_TIMEZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    # A little jitter so every paused merchant does not resume in the same second.
    return midnight + timedelta(seconds=random.uniform(30, 300))
