"""The calls of a batch: kfaccount/del for each claimed row, concurrent, paced, one token refresh.

A worker process keeps one pool of threads for WeChat calls, shared by every batch it runs, so a
merchant's batch of 50 takes about as long as its slowest call (or its rate limit) instead of 50 calls
in a row. What WeChat answered is kept on each ``Call``; the batch then records the outcomes.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import Actor, audit_event, audit_record_many
from authorizers import ratelimit
from authorizers.alerts import platform_error_seen
from authorizers.client import wechat_client
from authorizers.models import Authorizer
from authorizers.platforms import platform_label
from authorizers.tokens import AuthorizerInactive, authorizer_token_get
from kfaccounts.models import DeletionRequest
from observability import context as log_context
from wechat import errors


@dataclass(slots=True)
class Call:
    """One kfaccount/del call of a batch: its row, and what WeChat answered."""

    deletion: DeletionRequest
    error: BaseException | None = None
    from_delete: bool = False  # the error came from kfaccount/del itself (not from a token refresh)
    sent: bool = False  # kfaccount/del was called (an audit row is owed)
    skipped: bool = False  # never sent: the merchant's daily or minute quota ran out earlier in the batch


def call_all(authorizer: Authorizer, deletions: list[DeletionRequest]) -> list[Call]:
    """kfaccount/del for every row: one token read, calls concurrent and paced, one refresh on 40001."""
    calls = [Call(deletion) for deletion in deletions]
    try:
        token = authorizer_token_get(authorizer_id=authorizer.pk)
    except (AuthorizerInactive, errors.WeChatError) as exc:
        for call in calls:
            call.error = exc
        return calls
    _send(authorizer, calls, token)
    stale = [c for c in calls if isinstance(c.error, errors.TokenInvalid)]
    if stale:
        # Audit the rejected calls now: their retry below replaces what the row remembers.
        audit_record_many(call_event(call) for call in stale)
        retry = [Call(c.deletion) for c in stale]
        try:
            fresh = authorizer_token_get(authorizer_id=authorizer.pk, rejected=token)
        except (AuthorizerInactive, errors.WeChatError) as exc:
            if isinstance(exc, errors.WeChatError):
                platform_error_seen(exc, authorizer.platform.component_appid)
            for call in retry:
                call.error = exc
        else:
            _send(authorizer, retry, fresh)
        by_id = {c.deletion.pk: c for c in retry}
        calls = [by_id.get(c.deletion.pk, c) for c in calls]
    return calls


def _send(authorizer: Authorizer, calls: list[Call], token: str) -> None:
    # The authorizer's platform's client: its calls are counted under that platform (metrics).
    client = wechat_client(authorizer.platform)
    platform = authorizer.platform.component_appid
    # 45009 or 45011 on one call: the rest of the batch would get the same; they are not sent.
    quota_spent = threading.Event()

    task_request = log_context.request_id.get()  # the pool's threads log for the task that sent them
    label = platform_label(authorizer.platform)

    def call_one(call: Call) -> None:
        with log_context.bound(
            request=task_request, appid=authorizer.appid, deletion=call.deletion.pk, component_appid=label
        ):
            call_one_in_context(call)

    def call_one_in_context(call: Call) -> None:
        if quota_spent.is_set():
            call.skipped = True
            return
        call.sent = True
        try:
            client.kf_delete(access_token=token, kf_account=call.deletion.kf_account)
        except errors.WeChatError as exc:
            call.error, call.from_delete = exc, True
            if isinstance(exc, (errors.QuotaExceeded, errors.MinuteQuotaExceeded)):
                quota_spent.set()
            if not isinstance(exc, errors.TokenInvalid):  # a rejected token is retried, not reported
                platform_error_seen(exc, platform)

    def call_in_pool(call: Call) -> None:
        # The pool's threads outlive tasks: a connection of theirs (platform_error_seen writes) that
        # broke with a database restart is dropped here, as a task's own is around each task.
        close_old_connections()
        call_one(call)

    slots = ratelimit.reserve(authorizer=authorizer, api="del", count=len(calls))
    if len(calls) == 1 and slots is None:
        call_one(calls[0])
        return
    booked = time.monotonic()
    pool = _call_pool()
    futures: list[Future[None]] = []
    for index, call in enumerate(calls):
        if slots is not None:
            wait = slots.due(index, booked) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        futures.append(pool.submit(call_in_pool, call))
    for future in futures:
        future.result()


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _call_pool() -> ThreadPoolExecutor:
    """The worker process's threads for WeChat calls, shared by every batch running in it."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(settings.DELETION_CALL_THREADS, thread_name_prefix="wechat-call")
        return _POOL


def call_event(call: Call) -> AuditEvent:
    deletion, exc = call.deletion, call.error
    wechat_error = exc if isinstance(exc, errors.WeChatError) else None
    return audit_event(
        actor=Actor.system("deletions"),
        action=AuditAction.WECHAT_KF_DELETE_CALLED,
        authorizer_appid=deletion.authorizer.appid,
        subject=deletion.kf_account,
        outcome="ok" if wechat_error is None else wechat_error.reason,
        errcode=0 if wechat_error is None else wechat_error.errcode,
        errmsg="ok" if wechat_error is None else wechat_error.errmsg,
        rid=None if wechat_error is None else wechat_error.rid,
        detail={"deletion_id": deletion.pk, "attempt": deletion.attempts},
    )
