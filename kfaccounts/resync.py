"""The periodic kf-list re-sync (beat's `resync-kf-accounts`, every PACED_TICK_SECONDS): this tick's
slice of the eligible merchants, those re-synced longest ago first, so each is re-read once per
KF_RESYNC_SECONDS at an even pace (dbkit/pacing.py), through the de-duplicating sync request (a sync
already queued is joined), one statement for the whole slice."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet

from audit.services import Actor
from authorizers.models import Authorizer, AuthorizerStatus
from authorizers.policy import eligibility, eligible_q
from dbkit.pacing import paced_slice_claim
from kfaccounts.services import kf_accounts_sync_request_many


def _eligible_authorizers() -> QuerySet[Authorizer]:
    active = Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE)
    condition = eligible_q()
    if condition is not None:
        return active.filter(condition)
    # No SQL form of the rules (SQLite): the same rules in Python.
    return Authorizer.objects.filter(pk__in=[a.pk for a in active if eligibility(a).eligible])


def kf_accounts_resync_tick() -> int:
    """Ask for this tick's slice of eligible merchants' kf lists to be re-read; returns how many."""
    actor = Actor.schedule("periodic kf re-sync")
    pks = paced_slice_claim(
        _eligible_authorizers(),
        stamp="kf_resync_planned_at",
        period=timedelta(seconds=settings.KF_RESYNC_SECONDS),
        tick=timedelta(seconds=settings.PACED_TICK_SECONDS),
        limit=settings.PACED_SLICE_MAX,
    )
    kf_accounts_sync_request_many(authorizer_ids=pks, actor=actor)
    return len(pks)
