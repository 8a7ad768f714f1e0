from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def timesince_seconds(value: timedelta | None) -> str:
    """An age to the second: "1 h 02 min 05 s" (the dashboard's ticket age)."""
    if value is None:
        return "—"
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return gettext("%(h)d h %(m)02d min %(s)02d s") % {"h": hours, "m": minutes, "s": seconds}
    return gettext("%(m)d min %(s)02d s") % {"m": minutes, "s": seconds}


@register.filter
def minutes(value: timedelta | None) -> int:
    """A duration in whole minutes, rounded up (the lockout's length)."""
    if value is None:
        return 0
    return -(-int(value.total_seconds()) // 60)
