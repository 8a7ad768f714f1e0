"""Every write about cleanup rules and their runs.

A run re-syncs the merchant's kf list first (never acting on a stale mirror), selects from the
fresh mirror, and then either previews (dry run), stops at the blast-radius limit for an operator,
or asks for ordinary deletions through ``kfaccounts.services.deletions_request`` with the rule as
the actor. Nothing is deleted for an ineligible or revoked merchant: the run is refused before any
call to WeChat. Runs are claimed with a conditional UPDATE, like deletions.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from audit.models import ActorKind
from audit.services import Actor, audit_record
from authorizers.models import Authorizer, AuthorizerStatus
from authorizers.policy import eligibility
from authorizers.tokens import AuthorizerRevokedError, NoVerifyTicket
from cleanup import selectors
from cleanup.dispatch import cleanup_run_send
from cleanup.models import (
    OPEN_RUN_STATUSES,
    CleanupRule,
    CleanupRun,
    Combine,
    InviteStatus,
    ItemAction,
    ListedAccount,
    PatternKind,
    RuleMode,
    RunItem,
    RunStatus,
    ScheduleKind,
    SkipReason,
)
from kfaccounts import services as kf_services
from kfaccounts.models import ACTIVE_STATUSES, DeletionRequest, DeletionStatus, KfAccount
from kfaccounts.validation import MAX_BULK, InvalidKfAccount, kf_account_check
from webhooks.models import EventType
from webhooks.services import webhook_event_enqueue
from wechat import errors
from wechat.retry import Backoff

log = logging.getLogger(__name__)

FIRE_TASK = "cleanup.tasks.fire_cleanup_rule"
MAX_LISTED = 10_000
MAX_SYNC_ATTEMPTS = 3
RUN_LEASE = timedelta(minutes=10)
# A run whose sync hit a transient error tries again after up to 10 s, 20 s (then it fails).
SYNC_BACKOFF = Backoff(base_seconds=10, cap_seconds=300, jitter=0.5)
# Items sent in a webhook event; the API and the admin show every one.
EVENT_ITEMS_MAX = 1000


class InvalidRule(ValueError):
    """A rule (or a list of accounts) that cannot be accepted; ``errors`` maps field → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RunNotDecidable(Exception):
    """Only a run awaiting approval can be approved or declined (and only once)."""


# --- rules -------------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "mode",
    "enabled",
    "combine",
    "pattern",
    "pattern_kind",
    "invite_statuses",
    "unbound_days",
    "use_list",
    "max_accounts",
    "max_percent",
    "schedule_kind",
    "interval_seconds",
    "crontab",
    "timezone",
)
MAX_LIMIT_ACCOUNTS = 10_000


def rule_actor(rule: CleanupRule) -> Actor:
    return Actor(kind=ActorKind.SCHEDULE, id=f"cleanup_rule:{rule.pk}", label=f"cleanup rule {rule.pk}: {rule.name}")


def _int_or_none(errors: dict[str, str], name: str, value: object, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[name] = f"must be a whole number from {low} to {high}, or null"
        return None
    return value


def rule_values_check(values: dict[str, Any]) -> dict[str, Any]:
    """Every field of a rule checked together; raises InvalidRule naming each bad field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors["name"] = "a name of 1 to 100 characters is required"
    else:
        out["name"] = name.strip()
    for key, choices, default in (
        ("mode", RuleMode.values, RuleMode.DRY_RUN),
        ("combine", Combine.values, Combine.ALL),
        ("pattern_kind", PatternKind.values, PatternKind.GLOB),
        ("schedule_kind", ScheduleKind.values, ScheduleKind.CRONTAB),
    ):
        value = values.get(key, default)
        if value not in choices:
            errors[key] = f"must be one of {', '.join(choices)}"
        out[key] = value
    for flag, flag_default in (("enabled", True), ("use_list", False)):
        given = values.get(flag, flag_default)
        if not isinstance(given, bool):
            errors[flag] = "must be true or false"
        out[flag] = bool(given)
    pattern = values.get("pattern") or ""
    if not isinstance(pattern, str):
        errors["pattern"] = "must be a string"
        pattern = ""
    out["pattern"] = pattern
    if pattern and "pattern_kind" not in errors:
        try:
            selectors.pattern_compile(pattern, out["pattern_kind"])
        except selectors.InvalidPattern as exc:
            errors["pattern"] = str(exc)
    statuses = values.get("invite_statuses") or []
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        errors["invite_statuses"] = "must be a list"
        statuses = []
    elif set(statuses) - set(InviteStatus.values):
        errors["invite_statuses"] = f"may contain only {', '.join(InviteStatus.values)}"
    out["invite_statuses"] = sorted(set(statuses))
    out["unbound_days"] = _int_or_none(errors, "unbound_days", values.get("unbound_days"), 1, 3650)
    out["max_accounts"] = _int_or_none(errors, "max_accounts", values.get("max_accounts"), 1, MAX_LIMIT_ACCOUNTS)
    out["max_percent"] = _int_or_none(errors, "max_percent", values.get("max_percent"), 1, 100)
    if not (pattern or out["invite_statuses"] or out["unbound_days"] is not None or out["use_list"]):
        errors.setdefault(
            "selectors",
            "set at least one of pattern, invite_statuses, unbound_days, use_list (a rule selects something)",
        )
    tz = values.get("timezone") or "Asia/Shanghai"
    try:
        if not isinstance(tz, str) or len(tz) > 64:
            raise ZoneInfoNotFoundError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = "must be an IANA time zone such as Asia/Shanghai"
    out["timezone"] = tz
    out["interval_seconds"] = None
    out["crontab"] = ""
    if out["schedule_kind"] == ScheduleKind.INTERVAL:
        minimum = settings.CLEANUP_MIN_INTERVAL_SECONDS
        out["interval_seconds"] = _int_or_none(
            errors, "interval_seconds", values.get("interval_seconds"), minimum, 366 * 86400
        )
        if out["interval_seconds"] is None:
            errors.setdefault("interval_seconds", f"required for an interval schedule, at least {minimum} seconds")
    elif out["schedule_kind"] == ScheduleKind.CRONTAB:
        expression = values.get("crontab")
        try:
            out["crontab"] = _crontab_check(expression)
        except ValueError as exc:
            errors["crontab"] = str(exc)
    if errors:
        raise InvalidRule(errors)
    return out


def _crontab_check(expression: object) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("required for a crontab schedule: minute hour day-of-month month day-of-week")
    parts = expression.split()
    if len(parts) != 5 or len(expression) > 100:
        raise ValueError("must have five fields: minute hour day-of-month month day-of-week")
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        celery_crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
    except Exception as exc:  # celery raises ValueError and friends for each malformed field
        raise ValueError(f"not a valid crontab: {exc}") from None
    return " ".join(parts)


def cleanup_rule_create(*, authorizer: Authorizer | None, actor: Actor, values: dict[str, Any]) -> CleanupRule:
    checked = rule_values_check(values)
    with transaction.atomic():
        rule = CleanupRule.objects.create(
            authorizer=authorizer, created_by_kind=actor.kind, created_by_label=actor.label[:150], **checked
        )
        _schedule_sync(rule)
        _audit_rule(rule, actor, "cleanup_rule.created", {"rule": _rule_summary(rule)})
    return rule


def _audit_rule(rule: CleanupRule, actor: Actor, action: str, detail: dict[str, Any] | None = None) -> None:
    """The audit line of a change to a rule (a rule for every merchant names none)."""
    audit_record(
        actor=actor,
        action=action,
        authorizer_appid=rule.authorizer.appid if rule.authorizer else "",
        subject=f"rule {rule.pk}",
        outcome="ok",
        detail=detail,
    )


def cleanup_rule_update(*, rule: CleanupRule, actor: Actor, values: dict[str, Any]) -> CleanupRule:
    """Change some fields (the rest keep their values); the schedule follows."""
    if rule.is_archived:
        raise InvalidRule({"rule": "this rule was deleted"})
    merged = {name: getattr(rule, name) for name in RULE_FIELDS}
    merged.update({k: v for k, v in values.items() if k in RULE_FIELDS})
    checked = rule_values_check(merged)
    with transaction.atomic():
        before = _rule_summary(rule)
        for name, value in checked.items():
            setattr(rule, name, value)
        rule.save()
        _schedule_sync(rule)
        _audit_rule(rule, actor, "cleanup_rule.updated", {"before": before, "after": _rule_summary(rule)})
    return rule


def cleanup_rule_archive(*, rule: CleanupRule, actor: Actor) -> None:
    """A rule's "delete": it stops firing and is hidden; its runs stay as history."""
    with transaction.atomic():
        if not CleanupRule.objects.filter(pk=rule.pk, archived_at__isnull=True).update(
            archived_at=timezone.now(), enabled=False, updated_at=timezone.now()
        ):
            return
        rule.refresh_from_db()
        _schedule_sync(rule)
        _audit_rule(rule, actor, "cleanup_rule.archived")


def _rule_summary(rule: CleanupRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


def _schedule_sync(rule: CleanupRule) -> None:
    """Create or update the rule's django-celery-beat PeriodicTask to match the rule."""
    schedule: dict[str, Any]
    if rule.schedule_kind == ScheduleKind.INTERVAL:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=rule.interval_seconds, period=IntervalSchedule.SECONDS
        )
        schedule = {"interval": interval, "crontab": None}
    else:
        minute, hour, day_of_month, month, day_of_week = rule.crontab.split()
        cron, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
            timezone=rule.timezone,
        )
        schedule = {"crontab": cron, "interval": None}
    enabled = rule.enabled and not rule.is_archived
    task = rule.periodic_task
    if task is None:
        task = PeriodicTask(name=f"cleanup-rule-{rule.pk}", task=FIRE_TASK)
    task.task = FIRE_TASK
    task.args = json.dumps([rule.pk])
    task.enabled = enabled
    task.description = f"Cleanup rule {rule.pk}: {rule.name}"
    for key, value in schedule.items():
        setattr(task, key, value)
    task.save()
    if rule.periodic_task_id != task.pk:
        rule.periodic_task = task
        rule.save(update_fields=["periodic_task"])


# --- listed accounts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    kf_account: str
    delete_on: date
    note: str = ""


def listed_entries_check(items: object) -> list[Listed]:
    """[{"kf_account": …, "delete_on": "YYYY-MM-DD", "note": …}, …] checked; InvalidRule on any error."""
    if not isinstance(items, list) or not items:
        raise InvalidRule({"accounts": "a non-empty list of {kf_account, delete_on} is required"})
    if len(items) > MAX_LISTED:
        raise InvalidRule({"accounts": f"at most {MAX_LISTED} accounts per list"})
    found: dict[str, Listed] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidRule({"accounts": f"entry {position} must be an object"})
        try:
            account = kf_account_check(item.get("kf_account"))
        except InvalidKfAccount as exc:
            raise InvalidRule({"accounts": f"entry {position}: {exc}"}) from None
        on = item.get("delete_on")
        try:
            due = date.fromisoformat(on) if isinstance(on, str) and len(on) == 10 else None
        except ValueError:
            due = None
        if due is None:
            raise InvalidRule({"accounts": f"entry {position}: delete_on must be a date YYYY-MM-DD"})
        note = item.get("note") or ""
        if not isinstance(note, str) or len(note) > 200:
            raise InvalidRule({"accounts": f"entry {position}: note must be a string of at most 200 characters"})
        found[account] = Listed(account, due, note)
    return list(found.values())


def listed_entries_from_csv(text: str) -> list[Listed]:
    """CSV with the columns kf_account,delete_on[,note]; a header row is optional."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["kf_account", "delete_on"]:
        rows = rows[1:]
    items = []
    for row in rows:
        cells = [cell.strip() for cell in row]
        items.append(
            {"kf_account": cells[0], "delete_on": cells[1] if len(cells) > 1 else "", "note": ",".join(cells[2:])}
        )
    return listed_entries_check(items)


def cleanup_listed_accounts_set(
    *, rule: CleanupRule, entries: Sequence[Listed], actor: Actor, replace: bool = False
) -> int:
    """Add (or, with ``replace``, replace) the rule's list; an account listed again gets the new date."""
    if rule.is_archived:
        raise InvalidRule({"rule": "this rule was deleted"})
    with transaction.atomic():
        if replace:
            ListedAccount.objects.filter(rule=rule).delete()
        existing = {row.kf_account: row for row in ListedAccount.objects.filter(rule=rule)}
        new, changed = [], []
        for entry in entries:
            row = existing.get(entry.kf_account)
            if row is None:
                new.append(
                    ListedAccount(rule=rule, kf_account=entry.kf_account, delete_on=entry.delete_on, note=entry.note)
                )
            else:
                row.delete_on, row.note = entry.delete_on, entry.note
                changed.append(row)
        if len(existing) + len(new) > MAX_LISTED:
            raise InvalidRule({"accounts": f"a rule lists at most {MAX_LISTED} accounts"})
        ListedAccount.objects.bulk_create(new, batch_size=500)
        ListedAccount.objects.bulk_update(changed, ["delete_on", "note"], batch_size=500)
        _audit_rule(
            rule, actor, "cleanup_rule.list_updated", {"added": len(new), "changed": len(changed), "replaced": replace}
        )
    return len(new) + len(changed)


# --- starting runs -----------------------------------------------------------------------------


def _targets(rule: CleanupRule) -> list[Authorizer]:
    if rule.authorizer_id is not None:
        return [rule.authorizer] if rule.authorizer else []
    # A rule for every merchant considers every active one; revoked merchants have nothing to clean.
    return list(Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE).order_by("pk"))


def _new_run(rule: CleanupRule, authorizer: Authorizer, *, dry_run: bool, trigger: str, actor: Actor) -> CleanupRun:
    run = CleanupRun.objects.create(
        rule=rule,
        authorizer=authorizer,
        dry_run=dry_run,
        trigger=trigger,
        requested_by_kind=actor.kind,
        requested_by_label=actor.label[:150],
    )
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
            runs.append(
                _new_run(
                    rule,
                    authorizer,
                    dry_run=rule.mode == RuleMode.DRY_RUN,
                    trigger="schedule",
                    actor=rule_actor(rule),
                )
            )
    return runs


def cleanup_run_request(
    *,
    rule: CleanupRule,
    actor: Actor,
    dry_run: bool,
    trigger: str,
    authorizer: Authorizer | None = None,
) -> list[CleanupRun]:
    """A run asked for now (API, admin): a dry run of any rule, or a real run of a delete-mode rule."""
    if rule.is_archived:
        raise InvalidRule({"rule": "this rule was deleted"})
    if not dry_run and rule.mode != RuleMode.DELETE:
        raise InvalidRule({"mode": "this rule is in dry-run mode: it only previews (set mode to delete first)"})
    targets = [authorizer] if authorizer is not None else _targets(rule)
    with transaction.atomic():
        runs = [_new_run(rule, target, dry_run=dry_run, trigger=trigger, actor=actor) for target in targets]
        for run in runs:
            audit_record(
                actor=actor,
                action="cleanup_run.requested",
                authorizer_appid=run.authorizer.appid,
                subject=f"rule {rule.pk}",
                outcome="dry_run" if dry_run else "run",
                detail={"run_id": run.pk},
            )
    return runs


# --- executing a run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Next:
    countdown: float | None = None


@dataclass
class Plan:
    present: int = 0
    delete: list[tuple[str, list[str]]] = field(default_factory=list)
    skip: list[tuple[str, str, list[str]]] = field(default_factory=list)


def criteria_for(rule: CleanupRule) -> selectors.Criteria:
    listed = None
    if rule.use_list:
        listed = {row.kf_account: row.delete_on for row in rule.listed_accounts.all()}
    return selectors.Criteria(
        combine=rule.combine,
        pattern=selectors.pattern_compile(rule.pattern, rule.pattern_kind) if rule.pattern else None,
        pattern_text=rule.pattern,
        invite_statuses=frozenset(rule.invite_statuses or []),
        unbound_days=rule.unbound_days,
        listed=listed,
        timezone=ZoneInfo(rule.timezone),
    )


def _plan(rule: CleanupRule, authorizer: Authorizer, now: datetime) -> Plan:
    criteria = criteria_for(rule)
    mirror = list(KfAccount.objects.filter(authorizer=authorizer, gone_at__isnull=True))
    plan = Plan(present=len(mirror))
    active = set(
        DeletionRequest.objects.filter(authorizer=authorizer, status__in=ACTIVE_STATUSES).values_list(
            "kf_account", flat=True
        )
    )
    for row in mirror:
        reasons = selectors.match(
            criteria,
            selectors.Account(
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
        except InvalidKfAccount:
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
    claimed = (
        CleanupRun.objects.filter(pk=run_id, status=RunStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=2)))
        .update(
            status=RunStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + RUN_LEASE,
            started_at=now,
            updated_at=now,
        )
    )
    if claimed != 1:
        return Next()
    run = CleanupRun.objects.select_related("rule", "authorizer", "approved_from").get(pk=run_id)
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
    except kf_services.NotEligible as exc:
        _end(run, RunStatus.REFUSED, "not_eligible", str(exc))
        return Next()
    except (AuthorizerRevokedError, errors.AuthorizationRevoked):
        _end(run, RunStatus.REFUSED, "authorization_revoked", "the merchant revoked the authorization")
        return Next()
    except (errors.Transient, errors.TokenInvalid, NoVerifyTicket) as exc:
        if run.attempts < MAX_SYNC_ATTEMPTS:
            delay = SYNC_BACKOFF.delay(run.attempts)
            due = timezone.now() + timedelta(seconds=delay)
            if _move(run, status=RunStatus.PENDING, next_attempt_at=due, lease_expires_at=None, message=str(exc)[:500]):
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

    plan = _plan(rule, authorizer, timezone.now())
    if run.approved_from is not None:
        approved = set(
            RunItem.objects.filter(run=run.approved_from, action=ItemAction.DELETE).values_list("kf_account", flat=True)
        )
        plan.skip.extend((a, SkipReason.NOT_APPROVED, why) for a, why in plan.delete if a not in approved)
        plan.delete = [(a, why) for a, why in plan.delete if a in approved]
    limit_accounts = rule.max_accounts or settings.CLEANUP_MAX_ACCOUNTS
    limit_percent = rule.max_percent or settings.CLEANUP_MAX_PERCENT
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


def _move(run: CleanupRun, **changes: Any) -> bool:
    """Leave `running` only while this attempt holds the claim."""
    return (
        CleanupRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, attempts=run.attempts).update(
            updated_at=timezone.now(), **changes
        )
        == 1
    )


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
    if not _move(run, **changes):
        return False
    for key, value in changes.items():
        setattr(run, key, value)
    audit_record(
        actor=rule_actor(run.rule),
        action=f"cleanup_run.{status}",
        authorizer_appid=run.authorizer.appid,
        subject=f"rule {run.rule_id}",
        outcome=reason or status,
        errmsg=message[:255],
        detail={"run_id": run.pk, **{k: v for k, v in counts.items()}},
    )
    if status in _FINAL:
        _announce(run, EventType.RUN_FINISHED)
    elif status == RunStatus.AWAITING_APPROVAL:
        _announce(run, EventType.RUN_AWAITING_APPROVAL)
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


def _announce(run: CleanupRun, event_type: str) -> None:
    try:
        webhook_event_enqueue(
            authorizer_id=run.authorizer_id,
            authorizer_appid=run.authorizer.appid,
            event_type=event_type,
            data=run_event_data(run),
        )
    except Exception:  # a webhook problem must never undo or fail the run
        log.exception("could not record the %s webhook event for cleanup run %s", event_type, run.pk)


# --- approval ----------------------------------------------------------------------------------


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
        raise RunNotDecidable(f"{run.authorizer.appid}: run #{run.pk} is {run.status}, not awaiting approval")
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
            action="cleanup_run.approved",
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
            action="cleanup_run.declined",
            authorizer_appid=run.authorizer.appid,
            subject=f"rule {run.rule_id}",
            outcome="declined",
            detail={"run_id": run.pk},
        )
        _announce(run, EventType.RUN_FINISHED)
    return run


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
                action="cleanup_run.finished",
                authorizer_appid=run.authorizer.appid,
                subject=f"rule {run.rule_id}",
                outcome="finished",
                detail={"run_id": run.pk, **counts},
            )
            _announce(run, EventType.RUN_FINISHED)
            finished += 1
    return finished


def cleanup_runs_sweep() -> int:
    """Re-send runs a crash left behind: running with an expired lease, or pending and due but unsent."""
    now = timezone.now()
    recovered = CleanupRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).update(
        status=RunStatus.PENDING, lease_expires_at=None, next_attempt_at=None, updated_at=now
    )
    due = list(
        CleanupRun.objects.filter(status=RunStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(updated_at__lt=now - timedelta(minutes=2))
        .values_list("pk", flat=True)[:500]
    )
    for run_id in due:
        CleanupRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(updated_at=now)
        cleanup_run_send(run_id)
    return recovered + len(due)
