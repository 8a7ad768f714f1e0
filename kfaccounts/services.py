"""Every write about kf accounts and their deletions: requests, execution, sweeping, syncing."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor, audit_event, audit_record, audit_record_each, audit_record_many, merchant_label
from authorizers import ratelimit
from authorizers.alerts import platform_blocked, platform_error_seen
from authorizers.api_keys import api_key_revoke
from authorizers.client import wechat_client
from authorizers.dispatch import authorizer_info_refresh_send
from authorizers.models import ApiKey, Authorizer, AuthorizerStatus
from authorizers.policy import Eligibility, eligibility
from authorizers.revocation import authorizer_revoke
from authorizers.tokens import AuthorizerRevokedError, authorizer_token_get, with_authorizer_token
from dbkit.bulk import insert_many
from errorkit import DomainError
from kfaccounts.dispatch import deletions_continue_send, deletions_send, kf_accounts_sync_send
from kfaccounts.models import (
    ACTIVE_STATUSES,
    DeletionReason,
    DeletionRequest,
    DeletionStatus,
    IdempotencyRecord,
    KfAccount,
)
from kfaccounts.validation import MAX_BULK, InvalidKfAccount, kf_account_check
from observability import context as log_context
from webhooks.models import EventType
from webhooks.services import webhook_event_enqueue, webhook_events_enqueue
from wechat import errors
from wechat.results import KfAccountInfo
from wechat.retry import Backoff

log = logging.getLogger(__name__)

# WeChat's daily quotas reset at midnight, China Standard Time.
QUOTA_TIMEZONE = ZoneInfo("Asia/Shanghai")


class NotEligible(DomainError):
    """The merchant may not have this done; ``str()`` is the verdict, ``message`` what a client reads."""

    code = "not_eligible"
    status = 403

    def __init__(self, verdict: Eligibility, *, refused: str = "deletions are not possible") -> None:
        super().__init__(verdict.summary)
        self.message = f"{refused} for this account: {verdict.summary}"
        self.verdict = verdict


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was used before with a different body."""

    code = "idempotency_conflict"
    status = 422


class TooManyPending(DomainError):
    """The merchant already has as many pending deletions as it may: ask again later."""

    code = "too_many_pending"
    status = 429

    def __init__(self, pending: int, limit: int, retry_after: int) -> None:
        super().__init__(
            f"{pending} deletions are already pending (at most {limit}); retry in {retry_after} s",
            retry_after=retry_after,
        )


# How long a held deletion waits before it looks again whether the platform alert was cleared.
PLATFORM_HOLD_RECHECK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy(Backoff):
    """The deletion state machine's retries: the backoff, how many transient failures, the claim's lease.

    Owned by the task that passes it in (tasks.retry_policy reads it from the settings).
    """

    max_transient_failures: int = 5
    lease_seconds: int = 60


# --- requesting --------------------------------------------------------------------------------


def deletions_request(
    *,
    authorizer: Authorizer,
    kf_accounts: Sequence[object],
    actor: Actor,
    idempotency_key: str | None = None,
    record_rejections: bool = False,
    max_pending: int | None = None,
) -> list[DeletionRequest]:
    """Ask for kf accounts to be deleted; returns one request per distinct account, in order.

    Interactive callers (the API) get ``InvalidKfAccount`` / ``NotEligible`` and nothing is stored.
    Batch callers (command line, schedules) pass ``record_rejections`` and get ``rejected`` rows, so
    their report shows every account they named. An account with a pending or running request gets
    that request back instead of a second one.
    """
    if not kf_accounts:
        raise InvalidKfAccount("at least one kf_account is required")
    if len(kf_accounts) > MAX_BULK:
        raise InvalidKfAccount(f"at most {MAX_BULK} kf_accounts per request")
    # Check every value before folding repeats: JSON input may hold lists and objects, which are
    # not hashable and must be refused as invalid_input, not crash.
    checked: list[str] = []
    invalid: dict[str, str] = {}
    for value in kf_accounts:
        try:
            checked.append(kf_account_check(value))
        except InvalidKfAccount as exc:
            if not record_rejections:
                raise
            shown = (value if isinstance(value, str) else json.dumps(value, default=str))[:64]
            invalid.setdefault(shown, str(exc))
            checked.append(shown)
    accounts = list(dict.fromkeys(checked))  # drop repeats, keep order
    digest = _body_digest(accounts) if idempotency_key else ""
    if idempotency_key:
        # A replay answers what the first request got, even if the merchant has changed since.
        replay = _idempotent_replay(authorizer, idempotency_key, digest)
        if replay is not None:
            return replay
    verdict = eligibility(authorizer)
    if not verdict.eligible and not record_rejections:
        audit_record(
            actor=actor,
            action="deletion.refused",
            authorizer_appid=authorizer.appid,
            subject=accounts[0] if len(accounts) == 1 else f"{len(accounts)} accounts",
            outcome="not_eligible",
            detail={"reasons": [r.code for r in verdict.reasons]},
        )
        raise NotEligible(verdict)

    for attempt in range(3):
        try:
            with transaction.atomic():
                if idempotency_key:  # again: a concurrent request with the same key may have won
                    replay = _idempotent_replay(authorizer, idempotency_key, digest)
                    if replay is not None:
                        return replay
                pending, active = _active(authorizer, accounts)
                if max_pending is not None and pending + len(accounts) > max_pending:
                    raise TooManyPending(pending, max_pending, retry_after=60)
                deletions, created = _create_rows(authorizer, accounts, active, actor, verdict, invalid)
                if idempotency_key:
                    IdempotencyRecord.objects.create(
                        authorizer=authorizer,
                        key=idempotency_key,
                        body_digest=digest,
                        deletion_ids=[d.pk for d in deletions],
                    )
                to_send = [d.pk for d in created if d.status == DeletionStatus.PENDING]
                if to_send:
                    backlog = pending + len(to_send) > settings.DELETION_BATCH_SIZE
                    deletions_send(to_send, authorizer_id=authorizer.pk, backlog=backlog)
                return deletions
        except IntegrityError:
            # A concurrent request created an active row (or used the same key) first: look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _body_digest(accounts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(accounts)).encode("utf-8")).hexdigest()


def _idempotent_replay(authorizer: Authorizer, key: str, digest: str) -> list[DeletionRequest] | None:
    record = IdempotencyRecord.objects.filter(authorizer=authorizer, key=key).first()
    if record is None:
        return None
    if record.body_digest != digest:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different body")
    by_id = DeletionRequest.objects.in_bulk(record.deletion_ids)
    return [by_id[i] for i in record.deletion_ids if i in by_id]


def _active(authorizer: Authorizer, accounts: list[str]) -> tuple[int, dict[str, DeletionRequest]]:
    """How many of the merchant's deletions are pending or running, and which of ``accounts`` have one.

    One query when none of them has (the usual case): the count the pending cap needs and whether
    any is wanted come from the same scan of the merchant's active rows. Only then are they read.
    """
    mine = DeletionRequest.objects.filter(authorizer=authorizer, status__in=ACTIVE_STATUSES)
    counts = mine.aggregate(total=Count("pk"), wanted=Count("pk", filter=Q(kf_account__in=accounts)))
    active = {d.kf_account: d for d in mine.filter(kf_account__in=accounts)} if counts["wanted"] else {}
    return counts["total"], active


def _create_rows(
    authorizer: Authorizer,
    accounts: list[str],
    active: dict[str, DeletionRequest],
    actor: Actor,
    verdict: Eligibility,
    invalid: dict[str, str],
) -> tuple[list[DeletionRequest], list[DeletionRequest]]:
    now = timezone.now()
    new = [account for account in accounts if account not in active]
    # Most rows are pending and differ only in their account; a rejected one carries why.
    rejected = {account: (DeletionReason.INVALID_INPUT, invalid[account]) for account in new if account in invalid}
    if not verdict.eligible:
        rejected = {account: rejected.get(account, (DeletionReason.NOT_ELIGIBLE, verdict.summary)) for account in new}
    created = insert_many(
        DeletionRequest,
        shared={
            "authorizer": authorizer,
            "requested_by_kind": actor.kind,
            "requested_by_id": actor.id[:64],
            "requested_by_label": actor.label[:150],
        },
        varying={
            "kf_account": new,
            "status": [DeletionStatus.REJECTED if a in rejected else DeletionStatus.PENDING for a in new],
            "reason": [rejected[a][0] if a in rejected else "" for a in new],
            "errmsg": [rejected[a][1][:255] if a in rejected else "" for a in new],
            "dispatched_at": [None if a in rejected else now for a in new],
            "finished_at": [now if a in rejected else None for a in new],
        },
    )
    audit_record_each(
        actor=actor,
        action="deletion.requested",
        authorizer_appid=authorizer.appid,
        subjects=[row.kf_account for row in created],
        outcomes=[row.status for row in created],
        details=[{"deletion_id": row.pk} for row in created],
    )
    by_account = {**active, **{row.kf_account: row for row in created}}
    return [by_account[account] for account in accounts], created


# --- executing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Next:
    """What the task should do after an attempt: send itself again in ``countdown`` seconds, or not."""

    countdown: float | None = None


# The countdown re-send is timed by the clock of the worker that scheduled it, the claim by the one
# that runs it: a retry arriving a little early (clock skew) runs instead of waiting for the sweeper.
CLAIM_EARLY_TOLERANCE = timedelta(seconds=2)


def deletion_execute(*, deletion_id: int, policy: RetryPolicy) -> Next:
    """Claim one request, call kfaccount/del once (with one token refresh), record the outcome."""
    authorizer_id = DeletionRequest.objects.filter(pk=deletion_id).values_list("authorizer_id", flat=True).first()
    if authorizer_id is None:
        return Next()
    batch = deletions_execute(authorizer_id=authorizer_id, policy=policy, limit=1, ids=[deletion_id])
    return Next(countdown=batch.countdown)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one run of a merchant's deletions did, and what its task should send next."""

    claimed: int
    more: bool  # it took a full batch: send the merchant's task again (to the back of the queue)
    countdown: float | None = None  # a retry is scheduled: send it again in this many seconds


@dataclass(slots=True)
class _Call:
    """One kfaccount/del call of a batch: its row, and what WeChat answered."""

    deletion: DeletionRequest
    error: BaseException | None = None
    from_delete: bool = False  # the error came from kfaccount/del itself (not from a token refresh)
    sent: bool = False  # kfaccount/del was called (an audit row is owed)
    skipped: bool = False  # never sent: the merchant's quota ran out earlier in the batch


def deletions_execute(
    *, authorizer_id: int, policy: RetryPolicy, limit: int, ids: Sequence[int] | None = None
) -> Batch:
    """Claim up to ``limit`` of a merchant's due deletions and run them: the batch form of one attempt.

    The claim is one conditional UPDATE (``pending`` and due → ``running``, attempts + 1) of rows
    locked with SKIP LOCKED, so concurrent batches for one merchant never share a row. The token is
    read once, the calls go out concurrently (paced by the merchant's rate limit), their audit rows
    are written in one INSERT, the successes finish in one conditional UPDATE with their audit rows
    and the mirror; every other outcome goes through the same per-row transitions as always.
    """
    now = timezone.now()
    authorizer = Authorizer.objects.filter(pk=authorizer_id).first()
    if authorizer is None:
        return Batch(claimed=0, more=False)
    log_context.set_merchant(authorizer.appid)
    rate = ratelimit.rate_limit_for(authorizer)
    size = limit if rate is None else max(1, min(limit, int(rate * settings.DELETION_BATCH_SECONDS)))
    deletions = _claim(authorizer, size=size, now=now, policy=policy, ids=ids)
    if not deletions:
        return Batch(claimed=0, more=False)
    more = ids is None and len(deletions) >= size
    if more and rate is not None:
        # A paced merchant's next batch is queued now, while this one spends its slots: the limiter
        # books it right after them, so the merchant runs at its limit instead of pausing between
        # batches for a turn in the queue.
        deletions_continue_send(authorizer_id=authorizer.pk)
        more = False
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        # Refused before any call: the claim was not an attempt (attempts counts calls to WeChat).
        # A revocation that arrived after the request was accepted reads as the design's revocation
        # outcome; any other change of eligibility as a rejection by the policy.
        for deletion in deletions:
            if not authorizer.is_active:
                _finish(
                    deletion,
                    DeletionStatus.FAILED,
                    DeletionReason.AUTHORIZATION_REVOKED,
                    errmsg="the merchant revoked the authorization",
                    attempts=F("attempts") - 1,
                )
            else:
                _finish(
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
            _defer_for_quota(deletion, paused_until, counted=False)
        return Batch(claimed=len(deletions), more=False)
    if platform_blocked():
        for deletion in deletions:
            _hold_for_platform(deletion, counted=False)
        return Batch(claimed=len(deletions), more=False)

    calls = _call_all(authorizer, deletions)
    audit_record_many(_call_event(call) for call in calls if call.sent)
    _succeed_all([c.deletion for c in calls if c.error is None and not c.skipped])
    countdowns: list[float] = []
    for call in calls:
        if call.skipped:
            _defer_for_quota(call.deletion, authorizer.quota_paused_until or next_quota_reset(), counted=False)
        elif call.error is not None:
            outcome = _on_call_error(call, policy)
            if outcome.countdown is not None:
                countdowns.append(outcome.countdown)
    paused = any(isinstance(c.error, errors.QuotaExceeded) for c in calls)
    return Batch(claimed=len(deletions), more=more and not paused, countdown=min(countdowns, default=None))


def _claim(
    authorizer: Authorizer, *, size: int, now: datetime, policy: RetryPolicy, ids: Sequence[int] | None
) -> list[DeletionRequest]:
    due = DeletionRequest.objects.filter(authorizer_id=authorizer.pk, status=DeletionStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLAIM_EARLY_TOLERANCE)
    )
    if ids is not None:
        due = due.filter(pk__in=list(ids))
    lease = now + timedelta(seconds=policy.lease_seconds)
    with transaction.atomic():
        # SKIP LOCKED: a concurrent batch for the same merchant takes the next rows instead of
        # waiting for these (PostgreSQL; SQLite's IMMEDIATE transactions serialize the claims).
        deletions = list(due.select_for_update(skip_locked=True).order_by("id")[:size])
        if not deletions:
            return []
        claimed = DeletionRequest.objects.filter(
            pk__in=[d.pk for d in deletions], status=DeletionStatus.PENDING
        ).update(
            status=DeletionStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=lease,
            started_at=now,
            updated_at=now,
        )
        if claimed != len(deletions):  # only where the rows were not locked (no FOR UPDATE): look again
            mine = set(
                DeletionRequest.objects.filter(
                    pk__in=[d.pk for d in deletions], status=DeletionStatus.RUNNING, updated_at=now
                ).values_list("pk", flat=True)
            )
            deletions = [d for d in deletions if d.pk in mine]
    for deletion in deletions:
        deletion.status = DeletionStatus.RUNNING
        deletion.attempts += 1
        deletion.lease_expires_at = lease
        deletion.started_at = deletion.updated_at = now
        deletion.authorizer = authorizer  # one merchant per batch: no query per row
    return deletions


def _call_all(authorizer: Authorizer, deletions: list[DeletionRequest]) -> list[_Call]:
    """kfaccount/del for every row: one token read, calls concurrent and paced, one refresh on 40001."""
    calls = [_Call(deletion) for deletion in deletions]
    try:
        token = authorizer_token_get(authorizer_id=authorizer.pk)
    except (AuthorizerRevokedError, errors.WeChatError) as exc:
        for call in calls:
            call.error = exc
        return calls
    _send(authorizer, calls, token)
    stale = [c for c in calls if isinstance(c.error, errors.TokenInvalid)]
    if stale:
        # Audit the rejected calls now: their retry below replaces what the row remembers.
        audit_record_many(_call_event(call) for call in stale)
        retry = [_Call(c.deletion) for c in stale]
        try:
            fresh = authorizer_token_get(authorizer_id=authorizer.pk, rejected=token)
        except (AuthorizerRevokedError, errors.WeChatError) as exc:
            if isinstance(exc, errors.WeChatError):
                platform_error_seen(exc)
            for call in retry:
                call.error = exc
        else:
            _send(authorizer, retry, fresh)
        by_id = {c.deletion.pk: c for c in retry}
        calls = [by_id.get(c.deletion.pk, c) for c in calls]
    return calls


def _send(authorizer: Authorizer, calls: list[_Call], token: str) -> None:
    client = wechat_client()
    quota_spent = threading.Event()

    task_request = log_context.request_id.get()  # the pool's threads log for the task that sent them

    def call_one(call: _Call) -> None:
        with log_context.bound(request=task_request, appid=authorizer.appid, deletion=call.deletion.pk):
            call_one_in_context(call)

    def call_one_in_context(call: _Call) -> None:
        if quota_spent.is_set():
            call.skipped = True
            return
        call.sent = True
        try:
            client.kf_delete(access_token=token, kf_account=call.deletion.kf_account)
        except errors.WeChatError as exc:
            call.error, call.from_delete = exc, True
            if isinstance(exc, errors.QuotaExceeded):
                quota_spent.set()
            if not isinstance(exc, errors.TokenInvalid):  # a rejected token is retried, not reported
                platform_error_seen(exc)

    slots = ratelimit.reserve(authorizer=authorizer, api="del", count=len(calls))
    if len(calls) == 1 and slots is None:
        call_one(calls[0])
        return
    booked = time.monotonic()
    pool = _call_pool()
    futures: list[Future[None]] = []
    for index, call in enumerate(calls):
        if slots is not None:
            wait = slots.due(index, booked) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        futures.append(pool.submit(call_one, call))
    for future in futures:
        future.result()


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _call_pool() -> ThreadPoolExecutor:
    """The worker process's threads for WeChat calls, shared by every batch running in it."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(settings.DELETION_CALL_THREADS, thread_name_prefix="wechat-call")
        return _POOL


def _call_event(call: _Call) -> AuditEvent:
    deletion, exc = call.deletion, call.error
    wechat_error = exc if isinstance(exc, errors.WeChatError) else None
    return audit_event(
        actor=Actor.system("deletions"),
        action="wechat.kfaccount.del",
        authorizer_appid=deletion.authorizer.appid,
        subject=deletion.kf_account,
        outcome="ok" if wechat_error is None else wechat_error.reason,
        errcode=0 if wechat_error is None else wechat_error.errcode,
        errmsg="ok" if wechat_error is None else wechat_error.errmsg,
        rid=None if wechat_error is None else wechat_error.rid,
        detail={"deletion_id": deletion.pk, "attempt": deletion.attempts},
    )


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
                action=f"deletion.{DeletionStatus.SUCCEEDED}",
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
        _announce_finished_many(finished, stamp)
    for deletion in finished:
        deletion.status, deletion.errcode, deletion.errmsg, deletion.finished_at = "succeeded", 0, "ok", stamp


def _on_call_error(call: _Call, policy: RetryPolicy) -> Next:
    deletion, exc = call.deletion, call.error
    if isinstance(exc, AuthorizerRevokedError):
        _finish(
            deletion,
            DeletionStatus.FAILED,
            DeletionReason.AUTHORIZATION_REVOKED,
            errmsg="the merchant revoked the authorization",
        )
        return Next()
    if isinstance(exc, errors.WeChatError):
        # Only kfaccount/del itself can leave the account in doubt: a token refresh that timed out
        # says nothing about whether the account was deleted.
        return _on_wechat_error(deletion, exc, policy, outcome_unknown=call.from_delete and exc.outcome_unknown)
    raise AssertionError(f"unexpected error {exc!r}")


class _Failure(TypedDict):
    """What WeChat said, as the deletion row and its audit event keep it."""

    errcode: int | None
    errmsg: str
    rid: str | None


def _on_wechat_error(
    deletion: DeletionRequest, exc: errors.WeChatError, policy: RetryPolicy, *, outcome_unknown: bool
) -> Next:
    failed = _Failure(errcode=exc.errcode, errmsg=exc.errmsg, rid=exc.rid)
    if isinstance(exc, errors.InvalidKfAccount):
        if deletion.outcome_unknown:
            # An earlier attempt may have deleted it before we lost the answer: it is gone, as asked.
            _finish(deletion, DeletionStatus.SUCCEEDED, DeletionReason.ALREADY_GONE, **failed)
        else:
            _finish(deletion, DeletionStatus.FAILED, DeletionReason.INVALID_KF_ACCOUNT, **failed)
    elif isinstance(exc, errors.KfNotEnabled):
        _finish(deletion, DeletionStatus.FAILED, DeletionReason.KF_NOT_ENABLED, **failed)
    elif isinstance(exc, errors.PermissionNotGranted):
        _finish(deletion, DeletionStatus.FAILED, DeletionReason.PERMISSION_DENIED, **failed)
        authorizer_info_refresh_send(authorizer_id=deletion.authorizer_id)
    elif isinstance(exc, errors.AuthorizationRevoked):
        authorizer_revoke(appid=deletion.authorizer.appid, actor=Actor.system("deletions"), cause=exc)
        _finish(deletion, DeletionStatus.FAILED, DeletionReason.AUTHORIZATION_REVOKED, **failed)
    elif isinstance(exc, errors.QuotaExceeded):
        now = timezone.now()
        until = next_quota_reset(now)
        newly = Authorizer.objects.filter(pk=deletion.authorizer_id).filter(
            Q(quota_paused_until__isnull=True) | Q(quota_paused_until__lte=now)
        )
        if newly.update(quota_paused_until=until):
            # Once per pause, however many calls of a batch saw it: the merchant waits for midnight
            # and is held to a lower pace from then on.
            audit_record(
                actor=Actor.system("deletions"),
                action="authorizer.quota_paused",
                authorizer_appid=deletion.authorizer.appid,
                outcome="paused",
                errcode=exc.errcode,
                errmsg=exc.errmsg,
                rid=exc.rid,
                detail={"until": until.isoformat()},
            )
            ratelimit.rate_limit_learn(authorizer=deletion.authorizer, errcode=exc.errcode or 45009)
        else:
            until = (
                Authorizer.objects.filter(pk=deletion.authorizer_id)
                .values_list("quota_paused_until", flat=True)
                .first()
                or until
            )
        deletion.authorizer.quota_paused_until = until
        _defer_for_quota(deletion, until, counted=True, **failed)
    elif isinstance(exc, errors.IpNotWhitelisted):
        _hold_for_platform(deletion, counted=True, **failed)  # the alert is raised by with_authorizer_token
    elif isinstance(exc, (errors.Transient, errors.TokenInvalid)):
        return _on_transient(deletion, policy, outcome_unknown=outcome_unknown, **failed)
    else:
        _finish(deletion, DeletionStatus.FAILED, DeletionReason.WECHAT_ERROR, **failed)
    return Next()


def _on_transient(
    deletion: DeletionRequest,
    policy: RetryPolicy,
    *,
    errcode: int | None,
    errmsg: str,
    rid: str | None,
    outcome_unknown: bool,
) -> Next:
    failures = deletion.transient_failures + 1
    if failures >= policy.max_transient_failures:
        _finish(
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
    moved = _move(
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
    _audit_transition(
        deletion,
        "deletion.retry_scheduled",
        DeletionReason.RETRY_SCHEDULED,
        errcode=errcode,
        errmsg=errmsg,
        rid=rid,
        due=due,
        transient_failures=failures,
    )
    return Next(countdown=delay)


def _defer_for_quota(
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
        _audit_transition(
            deletion,
            "deletion.deferred",
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
) -> bool:
    """Return a claimed row to pending until ``due`` without failing it; an attempt that never
    reached WeChat (``counted`` false) is given back and keeps the previous answer."""
    return _move(
        deletion,
        status=DeletionStatus.PENDING,
        reason=reason,
        errcode=errcode if counted else deletion.errcode,
        errmsg=(errmsg or deletion.errmsg)[:255],
        rid=rid or deletion.rid,
        next_attempt_at=due,
        dispatched_at=None,
        lease_expires_at=None,
        attempts=F("attempts") - (0 if counted else 1),
    )


def _hold_for_platform(
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
        _audit_transition(
            deletion, "deletion.held", DeletionReason.PLATFORM_HELD, errcode=errcode, errmsg=errmsg, rid=rid, due=due
        )


def _finish(
    deletion: DeletionRequest,
    status: str,
    reason: str,
    *,
    errcode: int | None = None,
    errmsg: str = "",
    rid: str | None = None,
    **extra: object,
) -> None:
    finished_at = timezone.now()
    if _move(
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
            action=f"deletion.{status}",
            authorizer_appid=deletion.authorizer.appid,
            subject=deletion.kf_account,
            outcome=reason or status,
            errcode=errcode,
            errmsg=errmsg or "",
            rid=rid,
            detail={"deletion_id": deletion.pk},
        )
        _announce_finished(deletion, status, reason, errcode, errmsg, finished_at)


def _announce_finished(
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


def _announce_finished_many(deletions: list[DeletionRequest], finished_at: datetime) -> None:
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


def _move(deletion: DeletionRequest, **changes: object) -> bool:
    """Leave `running` only if we still hold the claim: a sweeper may have taken an expired lease."""
    return (
        DeletionRequest.objects.filter(
            pk=deletion.pk, status=DeletionStatus.RUNNING, attempts=deletion.attempts
        ).update(updated_at=timezone.now(), **changes)
        == 1
    )


def _audit_transition(
    deletion: DeletionRequest,
    action: str,
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


# --- staff interventions -----------------------------------------------------------------------


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
            errmsg=f"cancelled by {actor.label}"[:255],
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
            action="deletion.cancelled",
            authorizer_appid=deletion.authorizer.appid,
            subject=deletion.kf_account,
            outcome=DeletionStatus.CANCELLED,
            detail={"deletion_id": deletion.pk},
        )
        _announce_finished(deletion, DeletionStatus.CANCELLED, "", None, deletion.errmsg, now)
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
            action="deletion.retry_refused",
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
                    action="deletion.retry_requested",
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


@dataclass(frozen=True, slots=True)
class DeactivationResult:
    changed: bool
    api_keys_revoked: int
    deletions_cancelled: int


def authorizer_deactivate(*, authorizer: Authorizer, actor: Actor) -> DeactivationResult:
    """Stop serving a merchant without erasing anything (the console has no "delete merchant").

    Its tokens are forgotten, its API keys revoked and its pending deletions cancelled; running ones
    finish. Its kf accounts, deletions and audit trail stay. Authorizing again makes it active.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Authorizer.objects.filter(pk=authorizer.pk)
            .exclude(status=AuthorizerStatus.DEACTIVATED)
            .update(
                status=AuthorizerStatus.DEACTIVATED,
                refresh_token_ciphertext="",
                access_token_ciphertext="",
                access_token_expires_at=None,
                updated_at=now,
            )
        )
        keys = list(ApiKey.objects.filter(authorizer=authorizer, revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key, actor=actor)
        key_prefixes = [key.prefix for key in keys]
        cancelled_ids = []
        for deletion in DeletionRequest.objects.filter(authorizer=authorizer, status=DeletionStatus.PENDING):
            try:
                deletion_cancel(deletion=deletion, actor=actor)  # audited and announced like any cancel
            except DeletionNotCancellable:
                continue  # a worker claimed it meanwhile: it finishes (refused, as no longer eligible)
            cancelled_ids.append(deletion.pk)
        audit_record(
            actor=actor,
            action="authorizer.deactivated",
            authorizer_appid=authorizer.appid,
            outcome="deactivated" if changed else "already_deactivated",
            detail={"api_keys_revoked": key_prefixes, "deletions_cancelled": cancelled_ids},
        )
    authorizer.refresh_from_db()
    return DeactivationResult(
        changed=bool(changed), api_keys_revoked=len(key_prefixes), deletions_cancelled=len(cancelled_ids)
    )


# --- sweeping ----------------------------------------------------------------------------------


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
    for deletion in DeletionRequest.objects.select_related("authorizer").filter(
        status=DeletionStatus.RUNNING, lease_expires_at__lt=now
    )[:batch]:
        # The worker died mid-attempt: WeChat may or may not have deleted the account.
        failures = deletion.transient_failures + 1
        if failures >= policy.max_transient_failures:
            _finish(
                deletion,
                DeletionStatus.FAILED,
                DeletionReason.UPSTREAM_UNAVAILABLE,
                errmsg="the worker stopped during every attempt",
                transient_failures=failures,
                outcome_unknown=True,
            )
        elif _move(
            deletion,
            status=DeletionStatus.PENDING,
            reason=DeletionReason.RETRY_SCHEDULED,
            next_attempt_at=None,
            lease_expires_at=None,
            dispatched_at=None,
            transient_failures=failures,
            outcome_unknown=True,
        ):
            _audit_transition(
                deletion,
                "deletion.lease_expired",
                DeletionReason.RETRY_SCHEDULED,
                errcode=None,
                errmsg="the worker did not finish the attempt in time",
                rid=None,
                due=now,
                transient_failures=failures,
            )
        expired += 1
    due = list(
        DeletionRequest.objects.filter(status=DeletionStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - stale_after))
        .order_by("id")
        .values_list("pk", flat=True)[:batch]
    )
    if due:
        DeletionRequest.objects.filter(pk__in=due).update(dispatched_at=now)
        deletions_send(due)
    if expired or due:
        log.info("deletion sweep: %d leases expired, %d re-sent", expired, len(due))
    return SweepResult(leases_expired=expired, resent=len(due))


# --- the mirror --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncResult:
    present: int
    added: int
    gone: int


def kf_accounts_sync(*, authorizer: Authorizer, actor: Actor) -> SyncResult:
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        audit_record(
            actor=actor,
            action="kf_accounts.sync_refused",
            authorizer_appid=authorizer.appid,
            outcome="not_eligible",
            detail={"reasons": [r.code for r in verdict.reasons]},
        )
        raise NotEligible(verdict)
    try:
        infos = with_authorizer_token(authorizer.pk, lambda token: wechat_client().kf_list(access_token=token))
    except AuthorizerRevokedError:
        audit_record(
            actor=actor, action="kf_accounts.sync_refused", authorizer_appid=authorizer.appid, outcome="not_active"
        )
        raise
    except errors.WeChatError as exc:
        audit_record(
            actor=actor,
            action="wechat.getkflist",
            authorizer_appid=authorizer.appid,
            outcome=exc.reason,
            errcode=exc.errcode,
            errmsg=exc.errmsg,
            rid=exc.rid,
            detail={"path": exc.path or ""},
        )
        raise
    now = timezone.now()
    max_length = KfAccount._meta.get_field("kf_account").max_length or 0
    # A name longer than the column is no kf account (those are at most 41 characters); skipping it
    # keeps one garbage entry from failing the whole sync.
    seen = {info.kf_account: info for info in infos if info.kf_account and len(info.kf_account) <= max_length}
    with transaction.atomic():
        existing = {row.kf_account: row for row in KfAccount.objects.select_for_update().filter(authorizer=authorizer)}
        added: list[KfAccount] = []
        changed: list[KfAccount] = []
        for account, info in seen.items():
            row = existing.get(account) or KfAccount(authorizer=authorizer, kf_account=account)
            _copy_info(row, info, now)
            (changed if row.pk else added).append(row)
        KfAccount.objects.bulk_create(added, batch_size=500)
        KfAccount.objects.bulk_update(changed, _MIRRORED_FIELDS, batch_size=500)
        gone = (
            KfAccount.objects.filter(authorizer=authorizer, gone_at__isnull=True)
            .exclude(kf_account__in=list(seen))
            .update(gone_at=now)
        )
        audit_record(
            actor=actor,
            action="kf_accounts.synced",
            authorizer_appid=authorizer.appid,
            outcome="ok",
            detail={"present": len(seen), "added": len(added), "gone": gone},
        )
    return SyncResult(present=len(seen), added=len(added), gone=gone)


_MIRRORED_FIELDS = [
    "kf_id",
    "kf_nick",
    "kf_headimgurl",
    "kf_wx",
    "invite_wx",
    "invite_expire_time",
    "invite_status",
    "unbound_since",
    "last_seen_at",
    "gone_at",
]


def _copy_info(row: KfAccount, info: KfAccountInfo, now: datetime) -> None:
    row.kf_id = info.kf_id[:32]
    row.kf_nick = info.kf_nick[:64]
    row.kf_headimgurl = info.kf_headimgurl[:500]
    row.kf_wx = info.kf_wx[:64]
    row.invite_wx = info.invite_wx[:64]
    row.invite_expire_time = _from_unix(info.invite_expire_time)
    row.invite_status = info.invite_status[:16]
    if row.kf_wx:
        row.unbound_since = None
    elif row.unbound_since is None:
        row.unbound_since = now
    row.last_seen_at = now
    row.gone_at = None


def _from_unix(seconds: int | None) -> datetime | None:
    """A unix time from WeChat, or None when it is absent or no plausible time at all."""
    if not seconds or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=QUOTA_TIMEZONE)
    except (OverflowError, OSError, ValueError):
        return None


SYNC_QUEUED_STALE_AFTER = timedelta(minutes=10)


def kf_accounts_sync_request(*, authorizer: Authorizer, actor: Actor) -> bool:
    """Queue a sync unless one is queued and not started yet; False when this request joined it.

    A queued mark older than SYNC_QUEUED_STALE_AFTER is taken as lost (a broker restart) and replaced.
    """
    now = timezone.now()
    claimed = (
        Authorizer.objects.filter(pk=authorizer.pk)
        .filter(Q(kf_sync_queued_at__isnull=True) | Q(kf_sync_queued_at__lt=now - SYNC_QUEUED_STALE_AFTER))
        .update(kf_sync_queued_at=now)
    )
    if claimed:
        kf_accounts_sync_send(authorizer_id=authorizer.pk, actor=actor)
    return bool(claimed)


def kf_accounts_sync_started(*, authorizer_id: int) -> None:
    """The queued sync is running: a request from now on needs a new one (it may want newer data)."""
    Authorizer.objects.filter(pk=authorizer_id).update(kf_sync_queued_at=None)


def deletions_for(ids: Iterable[int]) -> list[DeletionRequest]:
    """The deletions with these ids, in the order given (ids not found are left out)."""
    wanted = list(ids)  # read once: a generator would be empty on a second pass
    by_id = DeletionRequest.objects.in_bulk(wanted)
    return [by_id[i] for i in wanted if i in by_id]
