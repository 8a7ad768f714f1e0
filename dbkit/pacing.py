"""Periodic work spread over its period: each tick claims the slice of rows whose stamp is oldest.

A job that must touch every merchant once per period (the kf re-sync, the info re-read) would, run
all at once, queue 100,000 tasks in one burst and spend WeChat's per-minute limits in minutes. Run
every tick instead, it takes its share, ceil(rows × tick / period), of the rows that are due (stamp
empty or older than the period), oldest first, and stamps them: every row comes round once per
period, at an even pace, and a row whose work failed waits its turn like the others.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone


def slice_size(*, total: int, period: timedelta, tick: timedelta, limit: int) -> int:
    """This tick's share of `total` rows: enough that all of them come round once per period."""
    if total <= 0:
        return 0
    return min(limit, max(1, math.ceil(total * tick / period)))


def paced_slice_claim(queryset: QuerySet, *, stamp: str, period: timedelta, tick: timedelta, limit: int) -> list[int]:
    """Claim this tick's slice of `queryset` (see the module doc): stamp it now; returns its pks.

    Rows locked by a concurrent claim are skipped, so two overlapping ticks never take the same row.
    """
    now = timezone.now()
    size = slice_size(total=queryset.count(), period=period, tick=tick, limit=limit)
    if not size:
        return []
    due = queryset.filter(Q(**{f"{stamp}__isnull": True}) | Q(**{f"{stamp}__lt": now - period}))
    with transaction.atomic():
        pks = list(
            due.order_by(F(stamp).asc(nulls_first=True), "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:size]
        )
        queryset.model._default_manager.filter(pk__in=pks).update(**{stamp: now})
    return pks
