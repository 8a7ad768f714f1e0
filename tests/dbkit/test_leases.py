"""dbkit.leases: the claim / lease / heartbeat / sweep primitive, on deletions (its first user)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dbkit.leases import Lease, heartbeat
from kfaccounts.models import DeletionRequest

LEASE = Lease(seconds=30)


def _row(merchant, account: str = "kf1@shop", **fields) -> DeletionRequest:
    return DeletionRequest.objects.create(authorizer=merchant, kf_account=account, requested_by_kind="system", **fields)


@pytest.mark.django_db
def test_due_is_waiting_with_no_time_or_a_time_not_after_now(make_authorizer):
    merchant, now = make_authorizer(), timezone.now()
    now_due = _row(merchant, "a@shop")
    past = _row(merchant, "b@shop", next_attempt_at=now - timedelta(seconds=1))
    _row(merchant, "c@shop", next_attempt_at=now + timedelta(minutes=1))
    _row(merchant, "d@shop", status="running")
    _row(merchant, "e@shop", status="succeeded")
    assert set(DeletionRequest.objects.due(now)) == {now_due, past}
    assert DeletionRequest.objects.scheduled(now).get().kf_account == "c@shop"


@pytest.mark.django_db
def test_claim_takes_due_rows_once_and_sets_status_attempts_and_lease(make_authorizer):
    merchant, now = make_authorizer(), timezone.now()
    rows = [_row(merchant, f"kf{i}@shop") for i in range(3)]
    _row(merchant, "later@shop", next_attempt_at=now + timedelta(minutes=5))
    early = _row(merchant, "early@shop", next_attempt_at=now + timedelta(seconds=1))  # within LEASE.early

    claimed = DeletionRequest.objects.claim(now=now, lease=LEASE, limit=10, started_at=now)
    assert {r.pk for r in claimed} == {r.pk for r in rows} | {early.pk}
    for row in claimed:
        stored = DeletionRequest.objects.get(pk=row.pk)
        assert (stored.status, stored.attempts, stored.lease_expires_at, stored.started_at) == (
            "running",
            1,
            now + timedelta(seconds=30),
            now,
        )
        assert (row.status, row.attempts, row.lease_expires_at) == ("running", 1, stored.lease_expires_at)
    assert DeletionRequest.objects.claim(now=now, lease=LEASE) == []  # nothing left due


@pytest.mark.django_db
def test_release_is_refused_once_a_sweep_took_the_claim_and_it_was_claimed_again(make_authorizer):
    merchant, now = make_authorizer(), timezone.now()
    _row(merchant)
    (first,) = DeletionRequest.objects.claim(now=now, lease=LEASE)
    later = now + timedelta(seconds=31)
    assert DeletionRequest.objects.expired(later).get().pk == first.pk
    assert DeletionRequest.objects.requeue_expired(later) == 1
    (second,) = DeletionRequest.objects.claim(now=later, lease=LEASE)
    assert second.attempts == 2

    assert not DeletionRequest.objects.release(first, status="succeeded")  # the first worker is late
    assert DeletionRequest.objects.renew([first], lease=LEASE) == 0  # and cannot renew either
    assert DeletionRequest.objects.release(second, status="succeeded", lease_expires_at=None)
    assert DeletionRequest.objects.get(pk=first.pk).status == "succeeded"


@pytest.mark.django_db
def test_unsent_is_due_and_never_sent_or_sent_before_the_stale_limit(make_authorizer):
    merchant, now = make_authorizer(), timezone.now()
    never = _row(merchant, "a@shop", dispatched_at=None)
    old = _row(merchant, "b@shop", dispatched_at=now - timedelta(minutes=5))
    _row(merchant, "c@shop", dispatched_at=now - timedelta(seconds=5))
    assert set(DeletionRequest.objects.unsent(now, timedelta(seconds=45))) == {never, old}
    DeletionRequest.objects.mark_sent([never.pk, old.pk], now)
    assert not DeletionRequest.objects.unsent(now, timedelta(seconds=45)).exists()


def test_a_lease_must_outlast_its_heartbeat():
    with pytest.raises(ValueError):
        Lease(seconds=5, heartbeat_seconds=5)
    with pytest.raises(ValueError):
        Lease(seconds=0)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_a_committed_claim_while_the_work_runs(make_authorizer):
    merchant = make_authorizer()
    _row(merchant)
    lease = Lease(seconds=3, heartbeat_seconds=0.2)
    (row,) = DeletionRequest.objects.claim(now=timezone.now(), lease=lease)
    first_end = row.lease_expires_at
    renewed = threading.Event()

    def renew() -> None:
        if DeletionRequest.objects.renew([row], lease=lease):
            renewed.set()

    with heartbeat(lease, renew):
        assert renewed.wait(timeout=60), "no renewal while the work ran"
    stored = DeletionRequest.objects.get(pk=row.pk)
    assert stored.lease_expires_at is not None and first_end is not None
    assert stored.lease_expires_at > first_end


@pytest.mark.django_db
def test_no_heartbeat_thread_inside_a_callers_transaction(make_authorizer):
    # Its own connection could not see the uncommitted claim, only wait on its row locks.
    calls: list[int] = []
    with heartbeat(Lease(seconds=3, heartbeat_seconds=0.05), lambda: calls.append(1)):
        time.sleep(0.3)
    assert calls == []
