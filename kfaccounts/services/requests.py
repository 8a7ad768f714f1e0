"""Asking for deletions: validate, check the policy, store one row per account, send after commit.

``deletions_request`` is the one entry point of every caller (API, console, command line, cleanup
runs); what it stores is the outbox the batches (``execution``) work from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record, audit_record_each
from authorizers.models import Authorizer
from authorizers.policy import Eligibility, NotEligible, eligibility
from dbkit.bulk import insert_many
from errorkit import DomainError
from kfaccounts.dispatch import deletions_send
from kfaccounts.models import (
    ACTIVE_STATUSES,
    DeletionReason,
    DeletionRequest,
    DeletionStatus,
    IdempotencyRecord,
)
from kfaccounts.validation import MAX_BULK, MalformedKfAccount, kf_account_check


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

    Interactive callers (the API) get ``MalformedKfAccount`` / ``NotEligible`` and nothing is stored.
    Batch callers (command line, schedules) pass ``record_rejections`` and get ``rejected`` rows, so
    their report shows every account they named. An account with a pending or running request gets
    that request back instead of a second one.
    """
    if not kf_accounts:
        raise MalformedKfAccount("at least one kf_account is required")
    if len(kf_accounts) > MAX_BULK:
        raise MalformedKfAccount(f"at most {MAX_BULK} kf_accounts per request")
    # Check every value before folding repeats: JSON input may hold lists and objects, which are
    # not hashable and must be refused as invalid_input, not crash.
    checked: list[str] = []
    invalid: dict[str, str] = {}
    for value in kf_accounts:
        try:
            checked.append(kf_account_check(value))
        except MalformedKfAccount as exc:
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
            action=AuditAction.DELETION_REFUSED,
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
        action=AuditAction.DELETION_REQUESTED,
        authorizer_appid=authorizer.appid,
        subjects=[row.kf_account for row in created],
        outcomes=[row.status for row in created],
        details=[{"deletion_id": row.pk} for row in created],
    )
    by_account = {**active, **{row.kf_account: row for row in created}}
    return [by_account[account] for account in accounts], created


def deletions_for(ids: Iterable[int]) -> list[DeletionRequest]:
    """The deletions with these ids, in the order given (ids not found are left out)."""
    wanted = list(ids)  # read once: a generator would be empty on a second pass
    by_id = DeletionRequest.objects.in_bulk(wanted)
    return [by_id[i] for i in wanted if i in by_id]
