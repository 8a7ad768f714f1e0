"""Field validators of a cleanup rule. The model's fields carry them, so the console's ModelForm,
the API's ModelSerializer and the service's ``full_clean`` check the same things; what the fields
mean together (a pattern under its kind, a schedule's required part, at least one selector) is
``CleanupRule.clean()``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible


def validate_timezone(value: Any) -> None:
    try:
        if not isinstance(value, str) or not value or len(value) > 64:
            raise ZoneInfoNotFoundError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("must be an IANA time zone such as Asia/Shanghai", code="timezone") from None


def crontab_normalise(expression: Any) -> str:
    """Five crontab fields as celery reads them, single-spaced; ValidationError saying why not."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError(
            "required for a crontab schedule: minute hour day-of-month month day-of-week", code="required"
        )
    parts = expression.split()
    if len(parts) != 5 or len(expression) > 100:
        raise ValidationError("must have five fields: minute hour day-of-month month day-of-week", code="crontab")
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        celery_crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
    except Exception as exc:  # celery raises ValueError and friends for each malformed field
        raise ValidationError(f"not a valid crontab: {exc}", code="crontab") from None
    return " ".join(parts)


def validate_crontab(value: Any) -> None:
    """A blank crontab is the clean()'s business (only a crontab schedule needs one)."""
    if value:
        crontab_normalise(value)


def validate_invite_statuses(value: Any) -> None:
    from cleanup.models import InviteStatus  # the models import this module

    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValidationError("must be a list", code="invite_statuses")
    if set(value) - set(InviteStatus.values):
        raise ValidationError(f"may contain only {', '.join(InviteStatus.values)}", code="invite_statuses")


@deconstructible
class MinIntervalValidator:
    """At least CLEANUP_MIN_INTERVAL_SECONDS, read when checked (so a setting change needs no migration)."""

    def __call__(self, value: Any) -> None:
        minimum = settings.CLEANUP_MIN_INTERVAL_SECONDS
        if value is not None and value < minimum:
            raise ValidationError(f"at least {minimum} seconds", code="min_value")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MinIntervalValidator)

    def __hash__(self) -> int:
        return hash(type(self))
