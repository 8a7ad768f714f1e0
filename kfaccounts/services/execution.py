"""Running a merchant's due deletions in a batch: claim, check, call, record.

One batch is one merchant's: the claim takes up to a batch of its due rows (dbkit.leases), the
policy is asked once, the token read once, the calls go out together (``callpool``), the successes
finish in one conditional UPDATE and every other outcome goes through ``transitions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record_each, audit_record_many
from authorizers import ratelimit
from authorizers.alerts import merchant_call_succeeded, merchant_held, platform_blocked
from authorizers.client import wechat_client
from authorizers.models import Authorizer
from authorizers.platforms import platform_label
from authorizers.policy import eligibility
from authorizers.tokens import AuthorizerInactive, platform_recheck, with_authorizer_token
from dbkit.leases import Next, heartbeat
from kfaccounts.dispatch import deletions_send
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus, KfAccount
from kfaccounts.services import transitions
from kfaccounts.services.callpool import Call, call_all, call_event
from kfaccounts.services.transitions import RetryPolicy
from observability import context as log_context
from wechat import errors
from wechat.results import ApiQuota


@dataclass(frozen=True, slots=True)
class Batch:
    """What one run of a merchant's deletions did, and what its task should send next."""

    claimed: int
    more: bool  # it took a full batch: send the merchant's task again (to the back of the queue)
    countdown: float | None = None  # a retry is scheduled: send it again in this many seconds


def deletion_batch_execute(
    *, authorizer_id: int, policy: RetryPolicy, limit: int, ids: Sequence[int] | None = None
) -> Batch:
    """Claim up to ``limit`` of a merchant's due deletions (of ``ids`` only, if given) and run them.

    The claim is one conditional UPDATE (``pending`` and due → ``running``, attempts + 1) of rows
    locked with SKIP LOCKED, so concurrent batches for one merchant never share a row. The token is
    read once, the calls go out concurrently (paced by the merchant's rate limit), their audit rows
    are written in one INSERT, the successes finish in one conditional UPDATE with their audit rows
    and the mirror; every other outcome goes through the same per-row transitions as always.
    """
    now = timezone.now()
    authorizer = Authorizer.objects.select_related("platform").filter(pk=authorizer_id).first()
    if authorizer is None:
        return Batch(claimed=0, more=False)
    log_context.set_merchant(authorizer.appid, platform_label(authorizer.platform))
    rate = ratelimit.rate_limit_for(authorizer)
    size = limit if rate is None else max(1, min(limit, int(rate * settings.DELETION_BATCH_SECONDS)))
    mine = DeletionRequest.objects.filter(authorizer_id=authorizer.pk)
    if ids is not None:
        mine = mine.filter(pk__in=list(ids))
    deletions = mine.claim(now=now, lease=policy.lease, limit=size, started_at=now)
    if not deletions:
        return Batch(claimed=0, more=False)
    for deletion in deletions:
        deletion.authorizer = authorizer  # one merchant per batch: no query per row
    # While the batch runs its leases are renewed, so a lease can be short (a killed worker's rows
    # come back within seconds) however long a healthy batch takes; rows already finished (no
    # longer running under this claim) are not renewed.
    with heartbeat(policy.lease, lambda: DeletionRequest.objects.renew(deletions, lease=policy.lease)):
        more = ids is None and len(deletions) >= size
        return _run_claimed(authorizer, deletions, policy, now=now, rate=rate, more=more)


def _run_claimed(
    authorizer: Authorizer,
    deletions: list[DeletionRequest],
    policy: RetryPolicy,
    *,
    now: datetime,
    rate: float | None,
    more: bool,
) -> Batch:
    if more and rate is not None:
        # A paced merchant's next batch is queued now, while this one spends its slots: the limiter
        # books it right after them, so the merchant runs at its limit instead of pausing between
        # batches for a turn in the queue.
        deletions_send(authorizer_id=authorizer.pk, backlog=True)
        more = False
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        # Refused before any call: the claim was not an attempt (attempts counts calls to WeChat).
        # A revocation that arrived after the request was accepted reads as the design's revocation
        # outcome; any other change of eligibility as a rejection by the policy.
        for deletion in deletions:
            if not authorizer.is_active:
                transitions.finish(
                    deletion,
                    DeletionStatus.FAILED,
                    DeletionReason.AUTHORIZATION_REVOKED,
                    errmsg="the merchant revoked the authorization",
                    attempts=F("attempts") - 1,
                )
            else:
                transitions.finish(
                    deletion,
                    DeletionStatus.REJECTED,
                    DeletionReason.NOT_ELIGIBLE,
                    errmsg=verdict.summary,
                    attempts=F("attempts") - 1,
                )
        return Batch(claimed=len(deletions), more=more)
    paused_until = authorizer.quota_paused_until
    if paused_until is not None and authorizer.quota_paused(now):
        for deletion in deletions:
            transitions.defer_for_quota(deletion, paused_until, counted=False)
        return Batch(claimed=len(deletions), more=False)
    # The platform this merchant authorized: a 61004 on another platform holds nothing here.
    platform = authorizer.platform
    if platform_blocked(platform.component_appid) and not platform_recheck(platform):
        for deletion in deletions:
            transitions.hold_for_platform(deletion, counted=False)
        return Batch(claimed=len(deletions), more=False)
    held = merchant_held(authorizer.appid, platform.component_appid)
    if held:
        # The merchant is blocked (40164, an unrecovered 61023): one deletion probes, the rest wait.
        for deletion in deletions[1:]:
            transitions.hold_for_merchant(deletion, counted=False)
        deletions, more = deletions[:1], False
    _seed_pace(authorizer)

    calls = call_all(authorizer, deletions)
    audit_record_many(call_event(call) for call in calls if call.sent)
    succeeded = [c.deletion for c in calls if c.error is None and not c.skipped]
    _succeed_all(succeeded)
    released = succeeded and held and merchant_call_succeeded(authorizer.appid, platform.component_appid)
    if released and transitions.merchant_hold_release(authorizer_id=authorizer.pk):
        deletions_send(authorizer_id=authorizer.pk)
    stopped_by = next(
        (c.error for c in calls if isinstance(c.error, (errors.QuotaExceeded, errors.MinuteQuotaExceeded))), None
    )
    if isinstance(stopped_by, errors.MinuteQuotaExceeded):
        # 45011 once per batch, however many calls saw it: this merchant is called slower from now on.
        ratelimit.rate_limit_slow(authorizer=authorizer, errcode=stopped_by.errcode or 45011)
    countdowns: list[float] = []
    for call in calls:
        if call.skipped:
            if isinstance(stopped_by, errors.MinuteQuotaExceeded):
                outcome = transitions.defer_to_next_minute(call.deletion, counted=False)
                if outcome.countdown is not None:
                    countdowns.append(outcome.countdown)
            else:
                until = authorizer.quota_paused_until or transitions.next_quota_reset()
                transitions.defer_for_quota(call.deletion, until, counted=False)
        elif call.error is not None:
            outcome = _on_call_error(call, policy)
            if outcome.countdown is not None:
                countdowns.append(outcome.countdown)
    return Batch(claimed=len(deletions), more=more and stopped_by is None, countdown=min(countdowns, default=None))


def _seed_pace(authorizer: Authorizer) -> None:
    """The merchant's pace from openapi/quota/get, asked at most daily (authorizers.ratelimit)."""

    def read(cgi_path: str) -> ApiQuota:
        return with_authorizer_token(
            authorizer.pk,
            lambda token: wechat_client(authorizer.platform).api_quota(access_token=token, cgi_path=cgi_path),
        )

    try:
        ratelimit.rate_limit_seed(authorizer=authorizer, read=read)
    except AuthorizerInactive:
        pass  # the deletion's own call says so next


def _succeed_all(deletions: list[DeletionRequest]) -> None:
    """errcode 0 for every one: one conditional UPDATE per attempt count, their audit rows, the mirror."""
    if not deletions:
        return
    stamp = timezone.now()
    by_attempts: dict[int, list[DeletionRequest]] = {}
    for deletion in deletions:
        by_attempts.setdefault(deletion.attempts, []).append(deletion)
    with transaction.atomic():
        finished: list[DeletionRequest] = []
        for attempts, group in by_attempts.items():
            pks = [d.pk for d in group]
            moved = DeletionRequest.objects.filter(pk__in=pks, status=DeletionStatus.RUNNING, attempts=attempts).update(
                status=DeletionStatus.SUCCEEDED,
                reason="",
                errcode=0,
                errmsg="ok",
                rid="",
                finished_at=stamp,
                next_attempt_at=None,
                lease_expires_at=None,
                updated_at=stamp,
            )
            if moved != len(group):
                # A sweeper took an expired lease of some of them: only ours are finished here.
                ours = set(
                    DeletionRequest.objects.filter(
                        pk__in=pks, updated_at=stamp, status=DeletionStatus.SUCCEEDED
                    ).values_list("pk", flat=True)
                )
                group = [d for d in group if d.pk in ours]
            finished += group
        by_merchant: dict[str, list[DeletionRequest]] = {}
        for d in finished:  # one merchant's batch: one group
            by_merchant.setdefault(d.authorizer.appid, []).append(d)
        for appid, done in by_merchant.items():
            audit_record_each(
                actor=Actor.system("deletions"),
                action=AuditAction.DELETION_SUCCEEDED,
                authorizer_appid=appid,
                subjects=[d.kf_account for d in done],
                outcomes=[DeletionStatus.SUCCEEDED] * len(done),
                details=[{"deletion_id": d.pk} for d in done],
                errcode=0,
                errmsg="ok",
            )
        if finished:
            KfAccount.objects.filter(
                authorizer_id=finished[0].authorizer_id,
                kf_account__in=[d.kf_account for d in finished],
                gone_at__isnull=True,
            ).update(gone_at=stamp)
    if finished:
        transitions.announce_finished_many(finished, stamp)
    for deletion in finished:
        deletion.status, deletion.errcode, deletion.errmsg, deletion.finished_at = "succeeded", 0, "ok", stamp


def _on_call_error(call: Call, policy: RetryPolicy) -> Next:
    deletion, exc = call.deletion, call.error
    if isinstance(exc, AuthorizerInactive):
        transitions.finish(
            deletion,
            DeletionStatus.FAILED,
            DeletionReason.AUTHORIZATION_REVOKED,
            errmsg="the merchant revoked the authorization",
        )
        return Next()
    if isinstance(exc, errors.WeChatError):
        # Only kfaccount/del itself can leave the account in doubt: a token refresh that timed out
        # says nothing about whether the account was deleted.
        outcome_unknown = call.from_delete and exc.outcome_unknown
        return transitions.on_wechat_error(deletion, exc, policy, outcome_unknown=outcome_unknown)
    raise AssertionError(f"unexpected error {exc!r}")
