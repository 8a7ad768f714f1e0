"""Cleanup runs: started (by the schedule, the API or the console), executed, finished, swept.

A run re-syncs the merchant's kf list first (never acting on a stale mirror), selects from the
fresh mirror, and then either previews (dry run), stops at the blast-radius limit for an operator,
or asks for ordinary deletions through ``kfaccounts.services.deletions_request`` with the rule as
the actor. Nothing is deleted for an ineligible or revoked merchant: the run is refused before any
call to WeChat. Runs are claimed with a conditional UPDATE, like deletions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.models import Authorizer, AuthorizerStatus
from authorizers.policy import NotEligible, eligibility
from authorizers.tokens import AuthorizerInactive, NoVerifyTicket
from cleanup import matching
from cleanup.dispatch import cleanup_run_send
from cleanup.models import (
    OPEN_RUN_STATUSES,
    CleanupRule,
    CleanupRun,
    ItemAction,
    RuleMode,
    RunItem,
    RunStatus,
    SkipReason,
)
from cleanup.services.rules import InvalidRule, rule_actor
from dbkit.leases import Lease, Next, heartbeat
from errorkit import DomainError
from kfaccounts import services as kf_services
from kfaccounts.models import ACTIVE_STATUSES, DeletionRequest, DeletionStatus, KfAccount
from kfaccounts.validation import MAX_BULK, MalformedKfAccount, kf_account_check
from webhooks.models import EventType
from webhooks.services import webhook_event_enqueue
from wechat import errors

log = logging.getLogger(__name__)

MAX_SYNC_ATTEMPTS = 3
# A run holds its claim while it syncs, matches and asks for deletions, renewed every 20 s; a worker
# that died loses it within 90 s and the sweep hands the run to another.
RUN_LEASE = Lease(seconds=90, heartbeat_seconds=20)
# A pending run whose message has not been acted on for this long is re-sent by the sweep.
RUN_RESEND_AFTER = timedelta(minutes=2)
# Items sent in a webhook event; the API and the admin show every one.
EVENT_ITEMS_MAX = 1000


# --- starting runs -----------------------------------------------------------------------------


def _targets(rule: CleanupRule) -> list[Authorizer]:
    if rule.authorizer_id is not None:
        return [rule.authorizer] if rule.authorizer else []
    # A rule for every merchant considers every active one; revoked merchants have nothing to clean.
    return list(Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE).order_by("pk"))


class RunAlreadyOpen(DomainError):
    """A rule has at most one open (pending or running) run per merchant: a second is refused."""

    code = "cleanup_run_already_open"
    status = 409


def _new_run(rule: CleanupRule, authorizer: Authorizer, *, dry_run: bool, trigger: str, actor: Actor) -> CleanupRun:
    """Raises RunAlreadyOpen when the rule has an open run for the merchant (the unique constraint
    decides between two requests made at once)."""
    try:
        with transaction.atomic():
            run = CleanupRun.objects.create(
                rule=rule,
                authorizer=authorizer,
                dry_run=dry_run,
                trigger=trigger,
                requested_by_kind=actor.kind,
                requested_by_label=actor.label[:150],
            )
    except IntegrityError:
        open_run = CleanupRun.objects.filter(rule=rule, authorizer=authorizer, status__in=OPEN_RUN_STATUSES).first()
        raise RunAlreadyOpen(
            f"rule {rule.pk} already has an open run for {authorizer.appid}"
            + (f" (run {open_run.pk}, {open_run.status}): wait for it to end" if open_run else "")
        ) from None
    cleanup_run_send(run.pk)
    return run


def cleanup_rule_fire(*, rule_id: int) -> list[CleanupRun]:
    """The schedule fired: one run per target merchant, unless one is still open for it."""
    rule = CleanupRule.objects.select_related("authorizer").filter(pk=rule_id).first()
    if rule is None or rule.is_archived or not rule.enabled:
        return []
    runs = []
    with transaction.atomic():
        busy = set(
            CleanupRun.objects.filter(rule=rule, status__in=OPEN_RUN_STATUSES).values_list("authorizer_id", flat=True)
        )
        for authorizer in _targets(rule):
            if authorizer.pk in busy:
                log.info("cleanup rule %s: a run for %s is still open; not starting another", rule.pk, authorizer.appid)
                continue
            try:
                runs.append(
                    _new_run(
                        rule,
                        authorizer,
                        dry_run=rule.mode == RuleMode.DRY_RUN,
                        trigger="schedule",
                        actor=rule_actor(rule),
                    )
                )
            except RunAlreadyOpen:  # asked for at the same moment through the API or the console
                continue
    return runs


def cleanup_run_request(
    *,
    rule: CleanupRule,
    actor: Actor,
    dry_run: bool,
    trigger: str,
    authorizer: Authorizer | None = None,
) -> list[CleanupRun]:
    """A run asked for now (API, admin): a dry run of any rule, or a real run of a delete-mode rule.

    RunAlreadyOpen (409) if a run of the rule is still open for the merchant; for a rule of every
    merchant, those merchants are left out and the error comes only when every one has one open.
    """
    if rule.is_archived:
        raise InvalidRule({"rule": "this rule was deleted"})
    if not dry_run and rule.mode != RuleMode.DELETE:
        raise InvalidRule({"mode": "this rule is in dry-run mode: it only previews (set mode to delete first)"})
    targets = [authorizer] if authorizer is not None else _targets(rule)
    with transaction.atomic():
        runs, refused = [], []
        for target in targets:
            try:
                runs.append(_new_run(rule, target, dry_run=dry_run, trigger=trigger, actor=actor))
            except RunAlreadyOpen as exc:
                if authorizer is not None or len(targets) == 1:
                    raise
                refused.append(exc)
        if refused and not runs:
            raise RunAlreadyOpen(f"rule {rule.pk} already has an open run for every merchant: wait for them to end")
        for run in runs:
            audit_record(
                actor=actor,
                action=AuditAction.CLEANUP_RUN_REQUESTED,
                authorizer_appid=run.authorizer.appid,
                subject=f"rule {rule.pk}",
                outcome="dry_run" if dry_run else "run",
                detail={"run_id": run.pk},
            )
    return runs


# --- executing a run ---------------------------------------------------------------------------


@dataclass
class Plan:
    present: int = 0
    delete: list[tuple[str, list[str]]] = field(default_factory=list)
    skip: list[tuple[str, str, list[str]]] = field(default_factory=list)


def criteria_for(rule: CleanupRule) -> matching.Criteria:
    listed = None
    if rule.use_list:
        listed = {row.kf_account: row.delete_on for row in rule.listed_accounts.all()}
    return matching.Criteria(
        combine=rule.combine,
        pattern=matching.pattern_compile(rule.pattern, rule.pattern_kind) if rule.pattern else None,
        pattern_text=rule.pattern,
        invite_statuses=frozenset(rule.invite_statuses or []),
        unbound_days=rule.unbound_days,
        listed=listed,
        timezone=ZoneInfo(rule.timezone),
    )


class MatchBudgetExceeded(Exception):
    """Matching the rule's pattern against this merchant's accounts is more work than a run may do."""


def match_work(pattern: matching.Matcher, accounts: Iterable[str]) -> int:
    """An upper bound of RE2's work: the program's size times the characters it reads."""
    return pattern.programsize * sum(len(account) + 1 for account in accounts)


def _plan(rule: CleanupRule, authorizer: Authorizer, now: datetime) -> Plan:
    criteria = criteria_for(rule)
    mirror = list(KfAccount.objects.filter(authorizer=authorizer, gone_at__isnull=True))
    if criteria.pattern is not None:
        # Checked before any matching: the bound is exact, so no run starts work it may not finish.
        work = match_work(criteria.pattern, (row.kf_account for row in mirror))
        if work > settings.CLEANUP_MATCH_BUDGET:
            raise MatchBudgetExceeded(
                f"matching the pattern against {len(mirror)} accounts is {work:,} steps, more than "
                f"CLEANUP_MATCH_BUDGET ({settings.CLEANUP_MATCH_BUDGET:,}): use a simpler pattern"
            )
    plan = Plan(present=len(mirror))
    active = set(
        DeletionRequest.objects.filter(authorizer=authorizer, status__in=ACTIVE_STATUSES).values_list(
            "kf_account", flat=True
        )
    )
    for row in mirror:
        reasons = matching.match(
            criteria,
            matching.Account(
                kf_account=row.kf_account,
                kf_wx=row.kf_wx,
                invite_status=row.invite_status,
                invite_expire_time=row.invite_expire_time,
                unbound_since=row.unbound_since,
            ),
            now,
        )
        if reasons is None:
            continue
        try:
            kf_account_check(row.kf_account)
        except MalformedKfAccount:
            plan.skip.append((row.kf_account, SkipReason.INVALID_KF_ACCOUNT, reasons))
            continue
        if row.kf_account in active:
            plan.skip.append((row.kf_account, SkipReason.DELETION_ACTIVE, reasons))
        else:
            plan.delete.append((row.kf_account, reasons))
    if criteria.listed is not None:
        present = {row.kf_account for row in mirror}
        today = now.astimezone(criteria.timezone).date()
        suffix = f"@{authorizer.alias}" if authorizer.alias else None
        for account, due in sorted(criteria.listed.items()):
            if due <= today and account not in present and (suffix is None or account.endswith(suffix)):
                plan.skip.append((account, SkipReason.NOT_PRESENT, [f"listed for deletion on {due}"]))
    return plan


def cleanup_run_execute(*, run_id: int) -> Next:
    """Claim a run, re-sync, select, then preview / stop for approval / ask for the deletions."""
    now = timezone.now()
    if not CleanupRun.objects.filter(pk=run_id).claim(now=now, lease=RUN_LEASE, started_at=now):
        return Next()
    run = CleanupRun.objects.select_related("rule", "authorizer", "approved_from").get(pk=run_id)
    # The claim is renewed while the run works (the sync and the deletions' requests take a while).
    with heartbeat(RUN_LEASE, lambda: CleanupRun.objects.renew([run], lease=RUN_LEASE)):
        return _run_execute(run)


def _run_execute(run: CleanupRun) -> Next:
    rule, authorizer = run.rule, run.authorizer
    actor = rule_actor(rule)
    if rule.is_archived:
        _end(run, RunStatus.REFUSED, "rule_archived", "the rule was deleted before the run started")
        return Next()
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        _end(run, RunStatus.REFUSED, "not_eligible", verdict.summary)
        return Next()
    try:
        kf_services.kf_accounts_sync(authorizer=authorizer, actor=actor)
    except NotEligible as exc:
        _end(run, RunStatus.REFUSED, "not_eligible", str(exc))
        return Next()
    except (AuthorizerInactive, errors.AuthorizationRevoked):
        _end(run, RunStatus.REFUSED, "authorization_revoked", "the merchant revoked the authorization")
        return Next()
    except (errors.Transient, errors.TokenInvalid, NoVerifyTicket) as exc:
        if run.attempts < MAX_SYNC_ATTEMPTS:
            delay = kf_services.SYNC_BACKOFF.delay(run.attempts)
            due = timezone.now() + timedelta(seconds=delay)
            if CleanupRun.objects.release(
                run, status=RunStatus.PENDING, next_attempt_at=due, lease_expires_at=None, message=str(exc)[:500]
            ):
                return Next(countdown=delay)
            return Next()
        _end(run, RunStatus.FAILED, "sync_failed", f"the kf list could not be read from WeChat: {exc}")
        return Next()
    except errors.WeChatError as exc:
        _end(run, RunStatus.FAILED, "sync_failed", f"the kf list could not be read from WeChat: {exc}")
        return Next()
    authorizer.refresh_from_db()
    verdict = eligibility(authorizer)  # the sync may have re-read a revocation
    if not verdict.eligible:
        _end(run, RunStatus.REFUSED, "not_eligible", verdict.summary)
        return Next()

    try:
        plan = _plan(rule, authorizer, timezone.now())
    except MatchBudgetExceeded as exc:
        _end(run, RunStatus.FAILED, "match_budget_exceeded", str(exc))
        return Next()
    if run.approved_from is not None:
        approved = set(
            RunItem.objects.filter(run=run.approved_from, action=ItemAction.DELETE).values_list("kf_account", flat=True)
        )
        plan.skip.extend((a, SkipReason.NOT_APPROVED, why) for a, why in plan.delete if a not in approved)
        plan.delete = [(a, why) for a, why in plan.delete if a in approved]
    limit_accounts, limit_percent = rule.limits_effective()
    counts = {
        "present_count": plan.present,
        "limit_accounts": limit_accounts,
        "limit_percent": limit_percent,
        "matched_count": len(plan.delete) + len(plan.skip),
        "skipped_count": len(plan.skip),
    }
    with transaction.atomic():
        items = _write_items(run, plan)
        if run.dry_run:
            _end(run, RunStatus.PREVIEWED, "", f"would delete {len(plan.delete)} of {plan.present}", **counts)
            return Next()
        wanted = len(plan.delete)
        over = wanted > limit_accounts or wanted * 100 > plan.present * limit_percent
        if run.approved_from is None and over:
            _end(
                run,
                RunStatus.AWAITING_APPROVAL,
                "over_limit",
                f"would delete {wanted} of {plan.present} accounts; the limit is {limit_accounts} accounts "
                f"or {limit_percent}%: waiting for an operator's approval",
                **counts,
            )
            return Next()
        if not plan.delete:
            _end(run, RunStatus.FINISHED, "", "nothing to delete", **counts)
            return Next()
        created = 0
        for start in range(0, wanted, MAX_BULK):
            chunk = [account for account, _ in plan.delete[start : start + MAX_BULK]]
            deletions = kf_services.deletions_request(
                authorizer=authorizer, kf_accounts=chunk, actor=actor, record_rejections=True
            )
            by_account = {d.kf_account: d for d in deletions}
            for item in items:
                deletion = by_account.get(item.kf_account)
                if item.action == ItemAction.DELETE and deletion is not None:
                    item.deletion = deletion
                    created += 1
        RunItem.objects.bulk_update([i for i in items if i.deletion_id], ["deletion"], batch_size=500)
        _end(run, RunStatus.EXECUTING, "", f"asked for {created} deletions", created_count=created, **counts)
    return Next()


def _write_items(run: CleanupRun, plan: Plan) -> list[RunItem]:
    rows = [RunItem(run=run, kf_account=a, action=ItemAction.DELETE, matched_by=why) for a, why in plan.delete]
    rows += [
        RunItem(run=run, kf_account=a, action=ItemAction.SKIP, skip_reason=reason, matched_by=why)
        for a, reason, why in plan.skip
    ]
    return RunItem.objects.bulk_create(rows, batch_size=500)


_FINAL = {
    RunStatus.PREVIEWED,
    RunStatus.FINISHED,
    RunStatus.REFUSED,
    RunStatus.FAILED,
}


def _end(run: CleanupRun, status: str, reason: str, message: str, **counts: Any) -> bool:
    now = timezone.now()
    changes: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "message": message[:500],
        "lease_expires_at": None,
        "next_attempt_at": None,
        **counts,
    }
    if status in _FINAL:
        changes["finished_at"] = now
    if not CleanupRun.objects.release(run, **changes):
        return False
    for key, value in changes.items():
        setattr(run, key, value)
    audit_record(
        actor=rule_actor(run.rule),
        action=AuditAction(f"cleanup_run.{status}"),
        authorizer_appid=run.authorizer.appid,
        subject=f"rule {run.rule_id}",
        outcome=reason or status,
        errmsg=message[:255],
        detail={"run_id": run.pk, **{k: v for k, v in counts.items()}},
    )
    if status in _FINAL:
        run_announce(run, EventType.RUN_FINISHED)
    elif status == RunStatus.AWAITING_APPROVAL:
        run_announce(run, EventType.RUN_AWAITING_APPROVAL)
    return True


def run_event_data(run: CleanupRun) -> dict[str, Any]:
    items = list(run.items.select_related("deletion")[: EVENT_ITEMS_MAX + 1])
    return {
        "run": {
            "id": run.pk,
            "rule_id": run.rule_id,
            "rule_name": run.rule.name,
            "dry_run": run.dry_run,
            "trigger": run.trigger,
            "status": run.status,
            "reason": run.reason,
            "message": run.message,
            "present": run.present_count,
            "matched": run.matched_count,
            "created": run.created_count,
            "skipped": run.skipped_count,
            "succeeded": run.succeeded_count,
            "failed": run.failed_count,
            "rejected": run.rejected_count,
            "cancelled": run.cancelled_count,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "items": [
                {
                    "kf_account": item.kf_account,
                    "action": item.action,
                    "matched_by": item.matched_by,
                    "skip_reason": item.skip_reason,
                    "deletion_id": item.deletion_id,
                    "deletion_status": item.deletion.status if item.deletion else None,
                }
                for item in items[:EVENT_ITEMS_MAX]
            ],
            "items_truncated": len(items) > EVENT_ITEMS_MAX,
        }
    }


def run_announce(run: CleanupRun, event_type: str) -> None:
    try:
        webhook_event_enqueue(
            authorizer_id=run.authorizer_id,
            authorizer_appid=run.authorizer.appid,
            event_type=event_type,
            data=run_event_data(run),
        )
    except Exception:  # a webhook problem must never undo or fail the run
        log.exception("could not record the %s webhook event for cleanup run %s", event_type, run.pk)


# --- finishing ---------------------------------------------------------------------------------

_OUTCOME_FIELDS = {
    DeletionStatus.SUCCEEDED: "succeeded_count",
    DeletionStatus.FAILED: "failed_count",
    DeletionStatus.REJECTED: "rejected_count",
    DeletionStatus.CANCELLED: "cancelled_count",
}


def cleanup_runs_finish(*, run_ids: Iterable[int] | None = None) -> int:
    """Record the deletions' outcomes on executing runs; a run whose deletions all ended is finished."""
    queryset = CleanupRun.objects.select_related("rule", "authorizer").filter(status=RunStatus.EXECUTING)
    if run_ids is not None:
        queryset = queryset.filter(pk__in=list(run_ids))
    finished = 0
    for run in queryset[:500]:
        by_status = dict(
            RunItem.objects.filter(run=run, deletion__isnull=False)
            .values_list("deletion__status")
            .annotate(n=Count("id"))
            .values_list("deletion__status", "n")
        )
        counts = {name: by_status.get(status, 0) for status, name in _OUTCOME_FIELDS.items()}
        still_active = sum(n for status, n in by_status.items() if status in ACTIVE_STATUSES)
        now = timezone.now()
        if still_active:
            CleanupRun.objects.filter(pk=run.pk, status=RunStatus.EXECUTING).update(updated_at=now, **counts)
            continue
        if CleanupRun.objects.filter(pk=run.pk, status=RunStatus.EXECUTING).update(
            status=RunStatus.FINISHED, finished_at=now, updated_at=now, **counts
        ):
            run.refresh_from_db()
            audit_record(
                actor=rule_actor(run.rule),
                action=AuditAction.CLEANUP_RUN_FINISHED,
                authorizer_appid=run.authorizer.appid,
                subject=f"rule {run.rule_id}",
                outcome="finished",
                detail={"run_id": run.pk, **counts},
            )
            run_announce(run, EventType.RUN_FINISHED)
            finished += 1
    return finished


def cleanup_runs_sweep() -> int:
    """Re-send runs a crash left behind: running with an expired lease (sent again at once: the
    heartbeat keeps a live worker's lease fresh, so an expired one means its worker is gone), or
    pending and due but unsent."""
    now = timezone.now()
    expired = list(CleanupRun.objects.expired(now).values_list("pk", flat=True)[:500])
    recovered = CleanupRun.objects.filter(pk__in=expired).requeue_expired(now, next_attempt_at=None)
    due = list(CleanupRun.objects.unsent(now, RUN_RESEND_AFTER).values_list("pk", flat=True)[:500])
    CleanupRun.objects.mark_sent(due, now)
    for run_id in [*expired, *due]:
        cleanup_run_send(run_id)
    return recovered + len(due)
