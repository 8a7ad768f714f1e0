"""The periodic kf re-sync: each tick a slice of the eligible merchants, oldest first, through the
de-duplicating sync request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import Actor
from authorizers.models import Authorizer, AuthorizerStatus
from kfaccounts.resync import kf_accounts_resync_tick
from kfaccounts.services import kf_accounts_sync_request

pytestmark = pytest.mark.django_db


def _queued(callbacks) -> list[int]:
    from kfaccounts.tasks import sync_kf_accounts

    return [c.args[0] for c in callbacks if c.func == sync_kf_accounts.delay]


def test_kf_resync_asks_only_for_the_eligible_merchants(make_authorizer, django_capture_on_commit_callbacks):
    from kfaccounts.tasks import sync_kf_accounts

    eligible = make_authorizer()
    make_authorizer(verify_type_id=-1)
    make_authorizer(status=AuthorizerStatus.REVOKED)
    with django_capture_on_commit_callbacks() as resync:
        assert kf_accounts_resync_tick() == 1
    assert [c.args[:2] for c in resync if c.func == sync_kf_accounts.delay] == [(eligible.pk, "schedule")]


def test_the_resync_is_spread_over_its_period_each_merchant_once_oldest_first(
    make_authorizer, django_capture_on_commit_callbacks, settings
):
    # 10 merchants, a tick a quarter of the period: ceil(10 / 4) = 3 a tick, every one once.
    settings.KF_RESYNC_SECONDS, settings.PACED_TICK_SECONDS = 3600, 900
    merchants = {make_authorizer().pk for _ in range(10)}
    slices = []
    for _ in range(5):
        with django_capture_on_commit_callbacks() as tick:
            kf_accounts_resync_tick()
        slices.append(_queued(tick))
    assert [len(s) for s in slices] == [3, 3, 3, 1, 0]
    assert sorted(pk for s in slices for pk in s) == sorted(merchants)
    # A period later they come round again, the one planned longest ago first.
    Authorizer.objects.update(kf_sync_queued_at=None, kf_resync_planned_at=timezone.now() - timedelta(hours=2))
    oldest = slices[3][0]
    Authorizer.objects.filter(pk=oldest).update(kf_resync_planned_at=timezone.now() - timedelta(hours=5))
    with django_capture_on_commit_callbacks() as again:
        assert kf_accounts_resync_tick() == 3
    assert oldest in _queued(again)  # the last of the first round: taken before older pks now


def test_a_resync_joins_a_sync_already_queued_for_the_merchant(make_authorizer, django_capture_on_commit_callbacks):
    merchant = make_authorizer()
    with django_capture_on_commit_callbacks() as first:
        kf_accounts_sync_request(authorizer=merchant, actor=Actor.system("test"))
    with django_capture_on_commit_callbacks() as second:
        assert kf_accounts_resync_tick() == 1  # its turn, but the queued sync has not started: joined
    assert _queued(first) == [merchant.pk]
    assert _queued(second) == []


def test_a_tick_asks_for_its_whole_slice_in_one_update_and_joins_the_queued_ones(
    make_authorizer, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    """Issue 18: 843 merchants a tick at 100,000; one UPDATE for the slice, not one each."""
    from kfaccounts.services import kf_accounts_sync_request_many

    merchants = [make_authorizer() for _ in range(6)]
    with django_capture_on_commit_callbacks() as first:
        kf_accounts_sync_request(authorizer=merchants[0], actor=Actor.system("test"))
    with django_capture_on_commit_callbacks() as slice_, django_assert_max_num_queries(5):
        queued = kf_accounts_sync_request_many(authorizer_ids=[m.pk for m in merchants], actor=Actor.system("t"))
    assert queued == 5 and _queued(first) == [merchants[0].pk]
    assert sorted(_queued(slice_)) == sorted(m.pk for m in merchants[1:])
    with django_capture_on_commit_callbacks() as again:
        assert kf_accounts_sync_request_many(authorizer_ids=[m.pk for m in merchants], actor=Actor.system("t")) == 0
    assert _queued(again) == []
