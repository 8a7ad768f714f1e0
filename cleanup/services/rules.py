"""Cleanup rules: checked, created, changed, archived, and their dated lists of accounts.

Every change keeps the rule's schedule in step (schedules.py) and writes one audit line.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import ActorKind
from audit.services import Actor, audit_record
from authorizers.models import Authorizer
from cleanup.models import (
    CleanupRule,
    ListedAccount,
)
from cleanup.services.schedules import rule_schedule_sync
from errorkit import DomainError
from kfaccounts.validation import MalformedKfAccount, kf_account_check

MAX_LISTED = 10_000


class InvalidRule(DomainError, ValueError):
    """A rule (or a list of accounts) that cannot be accepted; ``errors`` maps field → message."""

    def __init__(self, errors: dict[str, str], *, code: str | None = None) -> None:
        super().__init__(fields=errors, code=code)
        self.errors = errors


LIMIT_FIELDS = ("max_accounts", "max_percent")


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


def rule_actor(rule: CleanupRule) -> Actor:
    return Actor(kind=ActorKind.SCHEDULE, id=f"cleanup_rule:{rule.pk}", label=f"cleanup rule {rule.pk}: {rule.name}")


def _rule_fields_set(rule: CleanupRule, values: dict[str, Any]) -> None:
    for name in RULE_FIELDS:
        if name in values:
            setattr(rule, name, values[name])


def rule_check(rule: CleanupRule) -> None:
    """The rule's fields checked by their validators and ``CleanupRule.clean()`` (which normalises
    them); raises InvalidRule naming each bad field."""
    try:
        rule.full_clean(exclude=[f.name for f in CleanupRule._meta.fields if f.name not in RULE_FIELDS])
    except ValidationError as exc:
        raise InvalidRule(
            {
                "selectors" if name == NON_FIELD_ERRORS else name: " ".join(str(m) for m in messages)
                for name, messages in exc.message_dict.items()
            }
        ) from None


def _limits_defaults() -> dict[str, int]:
    return {"max_accounts": settings.CLEANUP_MAX_ACCOUNTS, "max_percent": settings.CLEANUP_MAX_PERCENT}


def _limits_check(rule: CleanupRule, actor: Actor, before: dict[str, Any]) -> bool:
    """Blast-radius limits are staff policy: anyone may lower them; only staff may set one above the
    platform's default (a merchant keeps, or lowers, what staff granted). Raises InvalidRule
    ``limit_above_platform_default``; returns whether staff raised a limit with this change."""
    defaults = _limits_defaults()
    raised, errors = False, {}
    for name in LIMIT_FIELDS:
        new, old = getattr(rule, name), before.get(name)
        if new is None or new <= defaults[name] or new == old:
            continue
        if actor.kind == ActorKind.STAFF:
            raised = True
        elif old is None or new > old:
            errors[name] = (
                f"at most {defaults[name]}, the platform's limit: a merchant may lower it, never raise it "
                "(staff can raise it for one rule in the console)"
            )
    if errors:
        raise InvalidRule(errors, code="limit_above_platform_default")
    return raised


def _limits_mark(rule: CleanupRule, actor: Actor, raised: bool) -> None:
    """Record who raised the limits (staff), or forget it once both are back within the defaults."""
    defaults = _limits_defaults()
    if raised:
        rule.limits_raised_by, rule.limits_raised_at = actor.label[:150], timezone.now()
    elif all(getattr(rule, name) is None or getattr(rule, name) <= defaults[name] for name in LIMIT_FIELDS):
        rule.limits_raised_by, rule.limits_raised_at = "", None


def _audit_limits_raised(rule: CleanupRule, actor: Actor, before: dict[str, Any]) -> None:
    _audit_rule(
        rule,
        actor,
        AuditAction.CLEANUP_RULE_LIMITS_RAISED,
        {
            "before": {name: before.get(name) for name in LIMIT_FIELDS},
            "after": {name: getattr(rule, name) for name in LIMIT_FIELDS},
            "defaults": _limits_defaults(),
        },
    )


def cleanup_rule_create(*, authorizer: Authorizer | None, actor: Actor, values: dict[str, Any]) -> CleanupRule:
    rule = CleanupRule(authorizer=authorizer, created_by_kind=actor.kind, created_by_label=actor.label[:150])
    _rule_fields_set(rule, values)
    rule_check(rule)
    raised = _limits_check(rule, actor, {})
    _limits_mark(rule, actor, raised)
    with transaction.atomic():
        rule.save()
        rule_schedule_sync(rule)
        _audit_rule(rule, actor, AuditAction.CLEANUP_RULE_CREATED, {"rule": _rule_summary(rule)})
        if raised:
            _audit_limits_raised(rule, actor, {})
    return rule


def _audit_rule(rule: CleanupRule, actor: Actor, action: AuditAction, detail: dict[str, Any] | None = None) -> None:
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
    """Change some fields (the rest keep their values); the schedule follows. Returns the changed
    rule (``rule`` itself is left as it was if the change is refused)."""
    if rule.is_archived:
        raise InvalidRule({"rule": "this rule was deleted"})
    before = _rule_summary(rule)
    changed = copy.copy(rule)
    _rule_fields_set(changed, values)
    rule_check(changed)
    raised = _limits_check(changed, actor, before)
    _limits_mark(changed, actor, raised)
    with transaction.atomic():
        changed.save()
        rule_schedule_sync(changed)
        _audit_rule(
            changed, actor, AuditAction.CLEANUP_RULE_UPDATED, {"before": before, "after": _rule_summary(changed)}
        )
        if raised:
            _audit_limits_raised(changed, actor, before)
    return changed


def cleanup_rule_archive(*, rule: CleanupRule, actor: Actor) -> None:
    """A rule's "delete": it stops firing and is hidden; its runs stay as history."""
    with transaction.atomic():
        if not CleanupRule.objects.filter(pk=rule.pk, archived_at__isnull=True).update(
            archived_at=timezone.now(), enabled=False, updated_at=timezone.now()
        ):
            return
        rule.refresh_from_db()
        rule_schedule_sync(rule)
        _audit_rule(rule, actor, AuditAction.CLEANUP_RULE_ARCHIVED)


def _rule_summary(rule: CleanupRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


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
        except MalformedKfAccount as exc:
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
            rule,
            actor,
            AuditAction.CLEANUP_RULE_LIST_UPDATED,
            {"added": len(new), "changed": len(changed), "replaced": replace},
        )
    return len(new) + len(changed)
