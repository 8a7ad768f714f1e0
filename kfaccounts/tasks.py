"""Celery tasks for kf accounts: ids in, one service call, retry policy here."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Task, shared_task
from django.conf import settings

from audit.services import Actor
from authorizers.models import Authorizer
from authorizers.tokens import AuthorizerRevokedError
from kfaccounts import services
from wechat.errors import Transient
from wechat.retry import Backoff

log = logging.getLogger(__name__)


def retry_policy() -> services.RetryPolicy:
    return services.RetryPolicy(
        max_transient_failures=settings.DELETION_MAX_TRANSIENT_FAILURES,
        base_seconds=settings.DELETION_RETRY_BASE_SECONDS,
        cap_seconds=settings.DELETION_RETRY_CAP_SECONDS,
        lease_seconds=settings.DELETION_LEASE_SECONDS,
    )


@shared_task(acks_late=True, ignore_result=True)
def delete_kf_account(deletion_id: int) -> None:
    outcome = services.deletion_execute(deletion_id=deletion_id, policy=retry_policy())
    if outcome.countdown is not None:
        delete_kf_account.apply_async((deletion_id,), countdown=outcome.countdown)


# Above this many ids, the web request publishes one message and a worker sends the per-deletion
# tasks: 1,000 publishes take ~0.3 s on Redis, which a bulk request should not wait for.
FAN_OUT_FROM = 20


def dispatch_deletions(ids: Sequence[int]) -> None:
    if len(ids) >= FAN_OUT_FROM:
        send_deletions.delay(list(ids))
        return
    for deletion_id in ids:
        delete_kf_account.apply_async((deletion_id,))


@shared_task(acks_late=True, ignore_result=True)
def send_deletions(deletion_ids: list[int]) -> None:
    # Sending twice (a redelivery after a crash) is harmless: each task claims its row or does nothing.
    for deletion_id in deletion_ids:
        delete_kf_account.apply_async((deletion_id,))


@shared_task(ignore_result=True)
def sweep_deletions() -> None:
    services.deletions_sweep(policy=retry_policy())


# The n-th retry of a sync waits anywhere up to 2 s, 4 s, … 60 s.
SYNC_BACKOFF = Backoff(base_seconds=2, cap_seconds=60, jitter=1)


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
    except (services.NotEligible, AuthorizerRevokedError):
        # Definitive, and already in the audit log: the merchant changed since the sync was asked for.
        log.info("kf account sync for %s skipped: not eligible", authorizer.appid)
    except Transient as exc:
        raise self.retry(exc=exc, countdown=SYNC_BACKOFF.delay(self.request.retries + 1)) from exc
