"""The sweeper recovers what a crash left behind; claims by conditional update make re-sends harmless."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from dbkit.leases import Lease
from kfaccounts import services
from kfaccounts.models import DeletionRequest
from kfaccounts.tasks import run_deletions, sweep_deletions
from tests.kfaccounts.conftest import DEL_URL, OK, del_calls, deletions_sent

pytestmark = pytest.mark.django_db

POLICY = services.RetryPolicy(max_transient_failures=3, base_seconds=0, cap_seconds=0, lease=Lease(seconds=60))


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the sweeper; returns its result and the deletion ids it sent (the sends are not run)."""

    def run() -> tuple[services.SweepResult, list[int]]:
        with django_capture_on_commit_callbacks() as callbacks:
            result = services.deletions_sweep(policy=POLICY)
        return result, deletions_sent(callbacks)

    return run


def _row(merchant, **fields) -> DeletionRequest:
    fields.setdefault("kf_account", "kf1@shop")
    fields.setdefault("requested_by_kind", "system")
    return DeletionRequest.objects.create(authorizer=merchant, **fields)


def _crashed_mid_call(merchant, **fields) -> DeletionRequest:
    """A row a worker claimed and then died with: running, lease expired."""
    ago = timezone.now() - timedelta(minutes=5)
    return _row(
        merchant,
        status="running",
        attempts=1,
        started_at=ago,
        dispatched_at=ago,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        **fields,
    )


def test_an_expired_lease_goes_back_to_pending_with_outcome_unknown_and_is_resent(wechat, merchant, sweep):
    row = _crashed_mid_call(merchant)
    result, sent = sweep()
    assert (result.leases_expired, result.resent) == (1, 1)
    row.refresh_from_db()
    assert (row.status, row.reason, row.outcome_unknown, row.transient_failures) == (
        "pending",
        "retry_scheduled",
        True,
        1,
    )
    assert row.lease_expires_at is None and row.dispatched_at is not None
    assert sent == [row.pk]
    assert len(wechat.calls) == 0
    assert AuditEvent.objects.filter(action="deletion.lease_expired", detail__deletion_id=row.pk).count() == 1


def test_a_worker_killed_mid_call_ends_in_exactly_one_terminal_state(
    wechat, merchant, django_capture_on_commit_callbacks
):
    # The first call deleted the account but the worker died before recording it: WeChat now says 65401.
    row = _crashed_mid_call(merchant)
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    with django_capture_on_commit_callbacks(execute=True):
        sweep_deletions.delay()
    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == ("succeeded", "already_gone", 2)
    assert len(del_calls(wechat)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        sweep_deletions.delay()
    run_deletions.delay(merchant.pk)
    assert len(wechat.calls) == 1


def test_a_lease_that_has_not_expired_is_left_alone(wechat, merchant, sweep):
    row = _row(
        merchant,
        status="running",
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(seconds=30),
        dispatched_at=timezone.now() - timedelta(minutes=10),
    )
    assert sweep() == (services.SweepResult(0, 0), [])
    row.refresh_from_db()
    assert row.status == "running"


def test_leases_expiring_on_every_attempt_end_in_upstream_unavailable(wechat, merchant, sweep):
    row = _crashed_mid_call(merchant, transient_failures=POLICY.max_transient_failures - 1)
    _, sent = sweep()
    row.refresh_from_db()
    assert (row.status, row.reason, row.outcome_unknown) == ("failed", "upstream_unavailable", True)
    assert row.finished_at is not None
    assert sent == [] and len(wechat.calls) == 0


@pytest.mark.parametrize("dispatched", [None, timedelta(minutes=10)], ids=["never-sent", "sent-long-ago"])
def test_a_pending_row_whose_task_never_ran_is_resent_and_runs(
    wechat, merchant, dispatched, django_capture_on_commit_callbacks
):
    row = _row(merchant, dispatched_at=None if dispatched is None else timezone.now() - dispatched)
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):
        sweep_deletions.delay()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("succeeded", 1)
    (call,) = wechat.calls
    assert call.request.url.endswith(f"access_token=ACCESS_{merchant.appid}")


def test_rows_sent_recently_or_not_yet_due_are_not_resent(wechat, merchant, sweep):
    _row(merchant, kf_account="kf1@shop", dispatched_at=timezone.now())
    _row(
        merchant,
        kf_account="kf2@shop",
        dispatched_at=None,
        next_attempt_at=timezone.now() + timedelta(hours=3),
        reason="quota_exhausted",
    )
    assert sweep() == (services.SweepResult(0, 0), [])


def test_a_second_sweep_changes_nothing_and_calls_nothing(wechat, merchant, sweep):
    pending = _row(merchant, kf_account="kf1@shop", dispatched_at=None)
    crashed = _crashed_mid_call(merchant, kf_account="kf2@shop")
    _, first = sweep()
    assert sorted(first) == sorted([pending.pk, crashed.pk])
    snapshot = list(DeletionRequest.objects.order_by("pk").values())
    assert sweep() == (services.SweepResult(0, 0), [])
    assert list(DeletionRequest.objects.order_by("pk").values()) == snapshot
    assert len(wechat.calls) == 0


@pytest.mark.parametrize("status", ["succeeded", "failed", "rejected"])
def test_resending_a_terminal_row_does_nothing(wechat, merchant, status, sweep):
    row = _row(merchant, status=status, attempts=1, finished_at=timezone.now(), dispatched_at=None)
    before = DeletionRequest.objects.filter(pk=row.pk).values().get()
    run_deletions.delay(merchant.pk)
    assert sweep() == (services.SweepResult(0, 0), [])
    assert DeletionRequest.objects.filter(pk=row.pk).values().get() == before
    assert len(wechat.calls) == 0


def test_resending_a_running_row_does_not_call_wechat_twice(wechat, merchant):
    row = _row(merchant, status="running", attempts=1, lease_expires_at=timezone.now() + timedelta(seconds=60))
    run_deletions.delay(merchant.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("running", 1)
    assert len(wechat.calls) == 0


def test_a_worker_whose_lease_was_taken_cannot_overwrite_the_new_attempt(wechat, merchant, sweep):
    """The first worker is slow: its lease expires mid-call, the sweeper hands the row to a second one."""
    row = _row(merchant, dispatched_at=timezone.now())
    resent: list[int] = []

    def slow_success(request):
        DeletionRequest.objects.filter(pk=row.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        resent.extend(sweep()[1])
        return 200, {}, '{"errcode": 0, "errmsg": "ok"}'

    wechat.add_callback("POST", DEL_URL, callback=slow_success)
    run_deletions.delay(merchant.pk)
    row.refresh_from_db()
    # The slow worker's answer arrived after it lost the claim: the row belongs to the re-send now.
    assert (row.status, row.outcome_unknown) == ("pending", True)
    assert resent == [row.pk]

    wechat.replace("POST", DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    run_deletions.delay(merchant.pk)
    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == ("succeeded", "already_gone", 2)
    assert len(del_calls(wechat)) == 2
    assert (
        AuditEvent.objects.filter(
            action__in=["deletion.succeeded", "deletion.failed"], detail__deletion_id=row.pk
        ).count()
        == 1
    )
