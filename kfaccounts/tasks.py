"""Celery tasks for kf accounts: ids in, one service call, retry policy here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.core.cache import cache
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from audit.services import Actor
from authorizers.models import Authorizer
from authorizers.policy import NotEligible
from authorizers.tokens import AuthorizerInactive
from dbkit.leases import Lease
from kfaccounts import resync, services
from kfaccounts.models import DeletionRequest
from wechat.errors import Transient

log = logging.getLogger(__name__)

# What publishing raises when the broker is down (kombu wraps most; redis-py's own can escape it).
BROKER_ERRORS = (BrokerOperationalError, RedisConnectionError, ConnectionError, TimeoutError)


def retry_policy() -> services.RetryPolicy:
    return services.RetryPolicy(
        max_transient_failures=settings.DELETION_MAX_TRANSIENT_FAILURES,
        base_seconds=settings.DELETION_RETRY_BASE_SECONDS,
        cap_seconds=settings.DELETION_RETRY_CAP_SECONDS,
        # Renewed every third of its length while a batch runs, for at most a task's time limit.
        lease=Lease(
            seconds=settings.DELETION_LEASE_SECONDS,
            heartbeat_seconds=settings.DELETION_LEASE_SECONDS / 3,
            max_hold_seconds=settings.CELERY_TASK_TIME_LIMIT,
        ),
    )


# Set while a merchant's batch task waits in the queue: a request made meanwhile needs no message of
# its own, since that task claims every due row when it starts (it clears the mark first, so a row
# committed after the clearing sends a new one). A message can be lost (a worker killed with it
# reserved, a broker restart): the mark is trusted for as long as the sweeper trusts a sent row,
# DELETION_RESEND_SECONDS, so a lost message holds up the merchant's next batches no longer than that.
def _queued_mark_seconds() -> int:
    return settings.DELETION_RESEND_SECONDS


def _queued_mark(authorizer_id: int) -> str:
    return f"kfp:deletions-queued:{authorizer_id}"


# A merchant with a backlog (more than one batch of work) sends its batches at this lower priority,
# so that a merchant asking for a few deletions is served by the next free worker instead of
# waiting behind a turn of every busy merchant (shortest job first, between merchants). Redis
# consumes priority 0 first (kombu's priority_steps 0, 3, 6, 9); the filesystem broker ignores it.
BACKLOG_PRIORITY = 6


def batch_enqueue(*, authorizer_id: int | None = None, deletion_ids: Sequence[int] = (), backlog: bool = False) -> None:
    """Enqueue a merchant's batch task: the one way, whoever asks (``dispatch.deletions_send``).

    With ``authorizer_id``: that merchant's task, unless one is already waiting for a worker (the
    queued mark); ``backlog``: it now has more than a batch of work (see BACKLOG_PRIORITY). Without:
    the task of every merchant ``deletion_ids`` belong to, mark or not (the sweeper's re-sends: a
    mark may outlive a lost message). A broker outage is logged, not raised: the rows are stored and
    pending, and the sweeper re-sends them once it is back (DELETION_RESEND_SECONDS).
    """
    try:
        if authorizer_id is not None:
            _enqueue_unless_waiting(authorizer_id, backlog=backlog)
            return
        authorizer_ids = set(
            DeletionRequest.objects.filter(pk__in=list(deletion_ids)).values_list("authorizer_id", flat=True).distinct()
        )
        for merchant_id in sorted(authorizer_ids):
            run_deletions.apply_async((merchant_id,))
    except BROKER_ERRORS as exc:
        log.warning("broker unavailable, %d deletions left to the sweeper: %s", len(deletion_ids), type(exc).__name__)


def _enqueue_unless_waiting(authorizer_id: int, *, backlog: bool) -> None:
    mark = _queued_mark(authorizer_id)
    if not cache.add(mark, 1, _queued_mark_seconds()):
        return
    try:
        if backlog:
            run_deletions.apply_async((authorizer_id,), priority=BACKLOG_PRIORITY)
        else:
            run_deletions.apply_async((authorizer_id,))
    except Exception:
        with contextlib.suppress(*BROKER_ERRORS):
            cache.delete(mark)  # nothing waits: the next request must send
        raise


@shared_task(acks_late=True, ignore_result=True)
def run_deletions(authorizer_id: int) -> None:
    """Run a batch of one merchant's due deletions; with more left, go to the back of the queue.

    Each merchant with work has one message in the queue at a time (``batch_enqueue``), so a merchant
    asking for one deletion waits for a turn of every busy merchant, not for their whole backlog.
    """
    try:
        cache.delete(_queued_mark(authorizer_id))  # before the claim: see _queued_mark_seconds
    except BROKER_ERRORS as exc:
        log.warning("could not clear the queued mark of merchant %s: %s", authorizer_id, type(exc).__name__)
    batch = services.deletion_batch_execute(
        authorizer_id=authorizer_id, policy=retry_policy(), limit=settings.DELETION_BATCH_SIZE
    )
    if batch.more:
        batch_enqueue(authorizer_id=authorizer_id, backlog=True)
    if batch.countdown is not None:
        run_deletions.apply_async((authorizer_id,), countdown=batch.countdown)


@shared_task(ignore_result=True)
def sweep_deletions() -> None:
    services.deletions_sweep(policy=retry_policy(), stale_after=timedelta(seconds=settings.DELETION_RESEND_SECONDS))


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def sync_kf_accounts(
    self: Task[[int, str, str, str], None],
    authorizer_id: int,
    actor_kind: str = "system",
    actor_label: str = "sync",
    actor_id: str = "",
) -> None:
    services.kf_accounts_sync_started(authorizer_id=authorizer_id)
    authorizer = Authorizer.objects.get(pk=authorizer_id)
    try:
        services.kf_accounts_sync(authorizer=authorizer, actor=Actor(kind=actor_kind, id=actor_id, label=actor_label))
    except (NotEligible, AuthorizerInactive):
        # Definitive, and already in the audit log: the merchant changed since the sync was asked for.
        log.info("kf account sync for %s skipped: not eligible", authorizer.appid)
    except Transient as exc:
        raise self.retry(exc=exc, countdown=services.SYNC_BACKOFF.delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def resync_kf_accounts() -> None:
    """Every PACED_TICK_SECONDS: a slice of the eligible merchants' kf lists re-read (each once per
    KF_RESYNC_SECONDS)."""
    resync.kf_accounts_resync_tick()
