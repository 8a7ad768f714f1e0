"""A merchant's deletions run in batches: one claim, one token read, concurrent calls, bulk records."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.models import Authorizer
from kfaccounts import services
from kfaccounts.models import DeletionRequest, KfAccount
from kfaccounts.tasks import BACKLOG_PRIORITY, batch_enqueue, retry_policy, run_deletions
from tests.kfaccounts.conftest import DEL_URL, OK, TOKEN_URL, calls_to, del_calls

pytestmark = pytest.mark.django_db


def _request(merchant: Authorizer, count: int, prefix: str = "kf") -> list[DeletionRequest]:
    """Pending rows, as a bulk request leaves them before its task runs."""
    accounts = [f"{prefix}{i}@shop" for i in range(count)]
    now = timezone.now()
    KfAccount.objects.bulk_create(KfAccount(authorizer=merchant, kf_account=a, last_seen_at=now) for a in accounts)
    # Outside django_capture_on_commit_callbacks the after-commit send never runs: the rows wait.
    return services.deletions_request(authorizer=merchant, kf_accounts=accounts, actor=Actor.system("test"))


def _run(merchant: Authorizer, limit: int = 50) -> services.Batch:
    return services.deletion_batch_execute(authorizer_id=merchant.pk, policy=retry_policy(), limit=limit)


def _answer_by_account(answers: dict[str, dict], default: dict = OK):
    def callback(request):
        account = json.loads(request.body)["kf_account"]
        return 200, {}, json.dumps(answers.get(account, default))

    return callback


def test_a_batch_claims_every_due_row_and_calls_wechat_for_them_at_the_same_time(wechat, merchant):
    deletions = _request(merchant, 6)
    # Every call waits until all six are in flight: only concurrent calls get past the barrier.
    in_flight = threading.Barrier(6, timeout=10)

    def callback(request):
        in_flight.wait()
        return 200, {}, json.dumps(OK)

    wechat.add_callback("POST", DEL_URL, callback=callback)
    batch = _run(merchant)
    assert (batch.claimed, batch.more, batch.countdown) == (6, False, None)
    rows = DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions])
    assert {(r.status, r.errcode, r.attempts) for r in rows} == {("succeeded", 0, 1)}
    assert all(r.finished_at is not None for r in rows)
    assert len(del_calls(wechat)) == 6
    assert not calls_to(wechat, TOKEN_URL)  # the token was fresh: read once, no refresh
    events = AuditEvent.objects.filter(authorizer_appid=merchant.appid)
    assert events.filter(action="wechat.kf_delete_called", outcome="ok").count() == 6
    assert events.filter(action="deletion.succeeded").count() == 6
    assert not KfAccount.objects.filter(authorizer=merchant, gone_at__isnull=True).exists()


def test_the_statements_of_a_batch_do_not_grow_with_its_size(wechat, merchant, make_authorizer):
    wechat.post(DEL_URL, json=OK)
    counts = []
    for size, who in ((3, merchant), (30, make_authorizer())):
        _request(who, size)
        with CaptureQueriesContext(connection) as queries:
            assert _run(who).claimed == size
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts


def test_a_full_batch_asks_to_be_sent_again_and_leaves_the_rest_pending(wechat, merchant):
    wechat.post(DEL_URL, json=OK)
    deletions = _request(merchant, 5)
    batch = _run(merchant, limit=2)
    assert (batch.claimed, batch.more) == (2, True)
    statuses = list(
        DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]).order_by("id").values_list("status", flat=True)
    )
    assert statuses == ["succeeded", "succeeded", "pending", "pending", "pending"]


def test_the_batch_task_runs_a_backlog_to_the_end_one_batch_after_another(wechat, merchant, settings):
    settings.DELETION_BATCH_SIZE = 4
    wechat.post(DEL_URL, json=OK)
    deletions = _request(merchant, 10)
    run_deletions.delay(merchant.pk)
    assert set(DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert len(del_calls(wechat)) == 10


def test_each_row_of_a_batch_ends_in_the_state_its_own_answer_says(wechat, merchant):
    deletions = _request(merchant, 4)
    wechat.add_callback(
        "POST",
        DEL_URL,
        callback=_answer_by_account(
            {
                "kf1@shop": {"errcode": 65401, "errmsg": "invalid kf_account"},
                "kf2@shop": {"errcode": -1, "errmsg": "system error"},
            }
        ),
    )
    batch = _run(merchant)
    rows = {d.kf_account: d for d in DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions])}
    assert (rows["kf0@shop"].status, rows["kf3@shop"].status) == ("succeeded", "succeeded")
    assert (rows["kf1@shop"].status, rows["kf1@shop"].reason) == ("failed", "invalid_kf_account")
    assert (rows["kf2@shop"].status, rows["kf2@shop"].reason) == ("pending", "retry_scheduled")
    assert batch.countdown is not None  # the retry is due: the task sends itself again then
    outcomes = sorted(AuditEvent.objects.filter(action="wechat.kf_delete_called").values_list("subject", "errcode"))
    assert outcomes == [("kf0@shop", 0), ("kf1@shop", 65401), ("kf2@shop", -1), ("kf3@shop", 0)]


def test_a_token_rejected_in_a_batch_is_refreshed_once_and_only_the_rejected_calls_are_repeated(wechat, merchant):
    deletions = _request(merchant, 4)
    old = f"ACCESS_{merchant.appid}"

    def callback(request):
        account = json.loads(request.body)["kf_account"]
        if old in request.url and account in ("kf1@shop", "kf2@shop"):
            return 200, {}, json.dumps({"errcode": 40001, "errmsg": "invalid credential"})
        return 200, {}, json.dumps(OK)

    wechat.add_callback("POST", DEL_URL, callback=callback)
    wechat.post(
        TOKEN_URL,
        json={"authorizer_access_token": "ACCESS_NEW", "expires_in": 7200, "authorizer_refresh_token": "R2"},
    )
    _run(merchant)
    assert set(DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert len(calls_to(wechat, TOKEN_URL)) == 1
    calls = [(json.loads(c.request.body)["kf_account"], "ACCESS_NEW" in c.request.url) for c in del_calls(wechat)]
    assert sorted(calls) == sorted(
        [
            ("kf0@shop", False),
            ("kf1@shop", False),
            ("kf1@shop", True),
            ("kf2@shop", False),
            ("kf2@shop", True),
            ("kf3@shop", False),
        ]
    )
    # Every call to kfaccount/del has its audit row, the rejected ones too.
    audited = AuditEvent.objects.filter(action="wechat.kf_delete_called")
    assert audited.count() == 6
    assert audited.filter(errcode=40001).count() == 2


def test_45009_in_a_batch_pauses_the_merchant_once_and_teaches_no_pace(wechat, merchant, settings):
    """A daily count says nothing about pace (docs/wechat.md §12): nothing is learned from 45009."""
    deletions = _request(merchant, 5)
    wechat.post(DEL_URL, json={"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    batch = _run(merchant)
    assert not batch.more
    merchant.refresh_from_db()
    assert merchant.quota_paused(timezone.now())
    assert merchant.learned_rate_limit is None
    events = AuditEvent.objects.filter(authorizer_appid=merchant.appid)
    assert events.filter(action="authorizer.quota_paused").count() == 1
    assert not events.filter(action="authorizer.rate_limit_learned").exists()
    rows = DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions])
    assert {(r.status, r.reason, r.next_attempt_at) for r in rows} == {
        ("pending", "quota_exhausted", merchant.quota_paused_until)
    }


def test_45011_defers_the_batch_to_the_next_minute_counts_no_failure_and_slows_the_merchant(wechat, merchant, settings):
    settings.WECHAT_RATE_LIMIT_AFTER_QUOTA = 10
    deletions = _request(merchant, 5)
    wechat.post(
        DEL_URL, json={"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"}
    )
    before = timezone.now()
    batch = _run(merchant)
    assert not batch.more
    next_minute = before.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert batch.countdown is not None and 0 < batch.countdown <= (next_minute - before).total_seconds() + 6
    rows = list(DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]))
    assert {(r.status, r.reason, r.transient_failures) for r in rows} == {("pending", "minute_quota", 0)}
    # "retry next minute": in the next wall-clock minute, not within this one.
    dues = [r.next_attempt_at for r in rows]
    assert all(
        d is not None and next_minute + timedelta(seconds=2) < d <= next_minute + timedelta(seconds=6) for d in dues
    )
    assert sum(r.attempts for r in rows) == len(del_calls(wechat))  # attempts count calls, nothing else
    merchant.refresh_from_db()
    assert merchant.learned_rate_limit == 5  # halved once for the batch
    events = AuditEvent.objects.filter(authorizer_appid=merchant.appid)
    assert events.filter(action="authorizer.rate_limit_learned", errcode=45011).count() == 1
    assert not merchant.quota_paused(timezone.now())

    # The next minute they go through.
    wechat.replace("POST", DEL_URL, json=OK)
    DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]).update(next_attempt_at=None)
    _run(merchant)
    assert set(DeletionRequest.objects.filter(pk__in=[d.pk for d in deletions]).values_list("status", flat=True)) == {
        "succeeded"
    }


QUOTA_URL = DEL_URL.replace("/customservice/kfaccount/del", "/cgi-bin/openapi/quota/get")


def test_the_pace_is_seeded_from_openapi_quota_get_once_a_day(wechat, merchant):
    Authorizer.objects.filter(pk=merchant.pk).update(quota_checked_at=None)
    wechat.post(
        QUOTA_URL,
        json={
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 1000, "used": 0, "remain": 1000},
            "rate_limit": {"call_count": 600, "refresh_second": 60},
            "component_rate_limit": {"call_count": 120, "refresh_second": 60},
        },
    )
    wechat.post(DEL_URL, json=OK)
    _request(merchant, 2)
    _run(merchant)
    (quota_call,) = calls_to(wechat, QUOTA_URL)
    assert json.loads(quota_call.request.body) == {"cgi_path": "/customservice/kfaccount/del"}
    assert f"access_token=ACCESS_{merchant.appid}" in quota_call.request.url
    merchant.refresh_from_db()
    assert merchant.quota_rate_limit == 2.0  # the tighter limit: calls made on the merchant's behalf
    from authorizers.ratelimit import rate_limit_for

    assert rate_limit_for(merchant) == 2.0
    _request(merchant, 1, prefix="again")
    _run(merchant)
    assert len(calls_to(wechat, QUOTA_URL)) == 1  # cached for a day


def test_a_refused_quota_read_never_fails_a_deletion(wechat, merchant):
    Authorizer.objects.filter(pk=merchant.pk).update(quota_checked_at=None)
    wechat.post(QUOTA_URL, json={"errcode": 48001, "errmsg": "api unauthorized"})
    wechat.post(DEL_URL, json=OK)
    (deletion,) = _request(merchant, 1)
    _run(merchant)
    deletion.refresh_from_db()
    assert deletion.status == "succeeded"
    merchant.refresh_from_db()
    assert merchant.quota_rate_limit is None and merchant.quota_checked_at is not None


def test_a_rate_limited_merchants_calls_are_spaced_at_its_pace(wechat, merchant):
    Authorizer.objects.filter(pk=merchant.pk).update(rate_limit_per_second=20)
    _request(merchant, 5)
    sent: list[float] = []

    def callback(request):
        sent.append(time.monotonic())
        return 200, {}, json.dumps(OK)

    wechat.add_callback("POST", DEL_URL, callback=callback)
    started = time.monotonic()
    assert _run(merchant).claimed == 5
    sent.sort()
    assert len(sent) == 5
    # Only lower bounds measured from before the run are reliable on a loaded machine: a call waits
    # for its slot and may start late, never early. The k-th call cannot start before k/20 s.
    for k, at in enumerate(sent):
        assert at - started >= k * 0.05 - 0.002, (k, [t - started for t in sent])


def test_a_rate_limited_merchants_batch_holds_about_two_seconds_of_calls_and_queues_the_next_at_once(
    wechat, merchant, settings, django_capture_on_commit_callbacks
):
    settings.DELETION_BATCH_SECONDS = 2
    Authorizer.objects.filter(pk=merchant.pk).update(rate_limit_per_second=1.5)
    wechat.post(DEL_URL, json=OK)
    _request(merchant, 5)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = _run(merchant)
    assert (batch.claimed, batch.more) == (3, False)  # the next batch is already queued:
    assert [(c.func, c.keywords["authorizer_id"]) for c in callbacks] == [(batch_enqueue, merchant.pk)]


@pytest.fixture
def broker_queue(settings):
    """Tasks go to the broker instead of running in-process; counts what waits in the default queue."""
    from platform_app.celery import app

    app.conf.task_always_eager = False  # the autouse fixture restores it
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel  # kombu's virtual channel (the stubs know only its base)
        channel.queue_declare("celery")
        channel.queue_purge("celery")
        yield lambda: channel.queue_declare("celery", passive=True).message_count
        channel.queue_purge("celery")


def _ask(merchant: Authorizer, account: str, callbacks_capture) -> None:
    with callbacks_capture(execute=True):
        services.deletions_request(authorizer=merchant, kf_accounts=[account], actor=Actor.system("test"))


def test_requests_made_while_the_merchants_task_waits_send_no_message_of_their_own(
    merchant, make_authorizer, broker_queue, django_capture_on_commit_callbacks
):
    for i in range(5):
        _ask(merchant, f"kf{i}@shop", django_capture_on_commit_callbacks)
    assert broker_queue() == 1  # one task waits; it will claim all five
    _ask(make_authorizer(), "kf@other", django_capture_on_commit_callbacks)
    assert broker_queue() == 2  # another merchant's wait is its own


def test_once_the_waiting_task_has_started_the_next_request_sends_again(
    wechat, merchant, broker_queue, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    _ask(merchant, "kf1@shop", django_capture_on_commit_callbacks)
    assert broker_queue() == 1
    # A worker takes the message: the task clears the mark before it claims.
    run_deletions.run(merchant.pk)
    assert DeletionRequest.objects.get(kf_account="kf1@shop").status == "succeeded"
    _ask(merchant, "kf2@shop", django_capture_on_commit_callbacks)
    assert broker_queue() == 2


def _priorities(app_queue: str = "celery") -> list[int | None]:
    from platform_app.celery import app

    found = []
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        while (message := channel.basic_get(app_queue, no_ack=True)) is not None:
            found.append(message.properties.get("priority"))
    return found


def test_a_merchant_with_more_than_a_batch_of_work_sends_it_behind_merchants_with_a_little(
    wechat, merchant, make_authorizer, broker_queue, django_capture_on_commit_callbacks, settings
):
    wechat.post(DEL_URL, json=OK)
    settings.DELETION_BATCH_SIZE = 3
    with django_capture_on_commit_callbacks(execute=True):  # a few: served by the next free worker
        services.deletions_request(authorizer=merchant, kf_accounts=["a@shop", "b@shop"], actor=Actor.system("t"))
    bulk = make_authorizer()
    with django_capture_on_commit_callbacks(execute=True):  # more than one batch: it waits its turn
        services.deletions_request(
            authorizer=bulk, kf_accounts=[f"kf{i}@shop" for i in range(4)], actor=Actor.system("t")
        )
    assert _priorities() == [0, BACKLOG_PRIORITY]  # 0 is served first
    # Its next batch, sent by the task when it took a full one, waits its turn too.
    with django_capture_on_commit_callbacks(execute=True):
        run_deletions.run(bulk.pk)
    assert _priorities() == [BACKLOG_PRIORITY]
