"""Staff members: created with a role in one step, their role changed, unlocked after a lockout.

The console's own services (it owns the staff and their roles): each writes in one transaction and
leaves an audit line naming the superuser who did it. A role is one of three (console/roles.py):
``viewer`` and ``operator`` are groups, ``superuser`` is Django's flag; a member has exactly one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from console.roles import OPERATOR, VIEWER

SUPERUSER = "superuser"
ROLES = (
    (VIEWER, _("Viewer: sees every page, runs nothing")),
    (OPERATOR, _("Operator: also runs the actions on merchants, kf accounts, deletions, cleanup and webhooks")),
    (SUPERUSER, _("Superuser: also issues and revokes API keys and manages staff")),
)
ROLE_NAMES = {VIEWER: _("viewer"), OPERATOR: _("operator"), SUPERUSER: _("superuser")}


def role_of(user: User) -> str:
    """The member's role, or "" for an account that has none (made outside the console)."""
    if user.is_superuser:
        return SUPERUSER
    names = {group.name for group in user.groups.all()}  # prefetched by the staff list
    if OPERATOR in names:
        return OPERATOR
    if VIEWER in names:
        return VIEWER
    return ""


def _apply_role(user: User, role: str) -> None:
    if role not in dict(ROLES):
        raise ValueError(f"unknown role {role!r}")
    user.is_staff = True
    user.is_superuser = role == SUPERUSER
    user.save(update_fields=["is_staff", "is_superuser"])
    groups = [] if role == SUPERUSER else [Group.objects.get(name=role)]
    # Only the role groups are the console's: any other group the member is in stays.
    user.groups.remove(*Group.objects.filter(name__in=[VIEWER, OPERATOR]))
    user.groups.add(*groups)


@transaction.atomic
def staff_member_create(*, username: str, password: str, role: str, actor: Actor, email: str = "") -> User:
    """A staff member who can log in at once, with one role; the password passes the validators."""
    user = User(username=username, email=email, is_staff=True)
    validate_password(password, user=user)
    user.set_password(password)
    user.save()
    _apply_role(user, role)
    audit_record(actor=actor, action=AuditAction.STAFF_CREATED, subject=username, outcome=role)
    return user


@transaction.atomic
def staff_member_role_set(*, user: User, role: str, actor: Actor) -> bool:
    """Give the member this role (and only it); False when it already had it."""
    before = role_of(user)
    if before == role and user.is_staff:
        return False
    _apply_role(user, role)
    audit_record(
        actor=actor,
        action=AuditAction.STAFF_ROLE_CHANGED,
        subject=user.get_username(),
        outcome=role,
        detail={"from": before},
    )
    return True


def lockout_duration() -> timedelta | None:
    return get_cool_off()


def locking_attempts(*, now: datetime | None = None) -> QuerySet[AccessAttempt]:
    """django-axes' records that lock a login right now: AXES_FAILURE_LIMIT failures, the last one
    (``attempt_time``) within the cool-off."""
    attempts = AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
    cool_off = lockout_duration()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=(now or timezone.now()) - cool_off)
    return attempts


def staff_with_lock_state(users: QuerySet[User]) -> QuerySet[User]:
    """``is_locked_out`` on each member, in the same query."""
    return users.annotate(is_locked_out=Exists(locking_attempts().filter(username=OuterRef("username"))))


@transaction.atomic
def staff_member_unlock(*, username: str, actor: Actor) -> int:
    """Forget the member's failed logins (from every address), so it can log in again at once.

    The same as ``python manage.py axes_reset_username USERNAME``, audited. Returns how many lockout
    records were removed (0: it was not locked).
    """
    removed = axes_reset(username=username)
    audit_record(
        actor=actor,
        action=AuditAction.STAFF_UNLOCKED,
        subject=username,
        outcome="unlocked" if removed else "not_locked",
        detail={"records_removed": removed},
    )
    return removed
