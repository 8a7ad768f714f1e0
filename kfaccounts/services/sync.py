"""The kf-account mirror: ``getkflist`` copied into ``KfAccount``, and how a sync is asked for.

Every sync goes through ``kf_accounts_sync_request``, which queues at most one per merchant at a
time (whoever asks: the API, the console, a cleanup run, the nightly re-sync).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.client import wechat_client
from authorizers.models import Authorizer
from authorizers.policy import NotEligible, eligibility
from authorizers.tokens import AuthorizerInactive, with_authorizer_token
from kfaccounts.dispatch import kf_accounts_sync_send
from kfaccounts.models import KF_LIST_FIELDS, KfAccount
from kfaccounts.services.transitions import QUOTA_TIMEZONE
from wechat import errors
from wechat.results import KfAccountInfo
from wechat.retry import Backoff

# The n-th retry of a sync that met a transient error waits anywhere up to 2 s, 4 s, … 60 s
# (the sync task's retries, and a cleanup run whose sync failed).
SYNC_BACKOFF = Backoff(base_seconds=2, cap_seconds=60, jitter=1)


@dataclass(frozen=True, slots=True)
class SyncResult:
    present: int
    added: int
    gone: int


def kf_accounts_sync(*, authorizer: Authorizer, actor: Actor) -> SyncResult:
    verdict = eligibility(authorizer)
    if not verdict.eligible:
        audit_record(
            actor=actor,
            action=AuditAction.KF_LIST_SYNC_REFUSED,
            authorizer_appid=authorizer.appid,
            outcome="not_eligible",
            detail={"reasons": [r.code for r in verdict.reasons]},
        )
        raise NotEligible(verdict)
    try:
        infos = with_authorizer_token(
            authorizer.pk, lambda token: wechat_client(authorizer.platform).kf_list(access_token=token)
        )
    except AuthorizerInactive:
        audit_record(
            actor=actor,
            action=AuditAction.KF_LIST_SYNC_REFUSED,
            authorizer_appid=authorizer.appid,
            outcome="not_active",
        )
        raise
    except errors.WeChatError as exc:
        audit_record(
            actor=actor,
            action=AuditAction.WECHAT_KF_LIST_CALLED,
            authorizer_appid=authorizer.appid,
            outcome=exc.reason,
            errcode=exc.errcode,
            errmsg=exc.errmsg,
            rid=exc.rid,
            detail={"path": exc.path or ""},
        )
        raise
    now = timezone.now()
    max_length = KfAccount._meta.get_field("kf_account").max_length or 0
    # A name longer than the column is no kf account (those are at most 41 characters); skipping it
    # keeps one garbage entry from failing the whole sync.
    seen = {info.kf_account: info for info in infos if info.kf_account and len(info.kf_account) <= max_length}
    with transaction.atomic():
        existing = {row.kf_account: row for row in KfAccount.objects.select_for_update().filter(authorizer=authorizer)}
        added: list[KfAccount] = []
        changed: list[KfAccount] = []
        for account, info in seen.items():
            row = existing.get(account) or KfAccount(authorizer=authorizer, kf_account=account)
            _copy_info(row, info, now)
            (changed if row.pk else added).append(row)
        KfAccount.objects.bulk_create(added, batch_size=500)
        KfAccount.objects.bulk_update(changed, _MIRRORED_FIELDS, batch_size=500)
        gone = (
            KfAccount.objects.filter(authorizer=authorizer, gone_at__isnull=True)
            .exclude(kf_account__in=list(seen))
            .update(gone_at=now)
        )
        audit_record(
            actor=actor,
            action=AuditAction.KF_LIST_SYNCED,
            authorizer_appid=authorizer.appid,
            outcome="ok",
            detail={"present": len(seen), "added": len(added), "gone": gone},
        )
    return SyncResult(present=len(seen), added=len(added), gone=gone)


_MIRRORED_FIELDS = [
    *KF_LIST_FIELDS,
    "unbound_since",
    "last_seen_at",
    "gone_at",
]


def _copy_info(row: KfAccount, info: KfAccountInfo, now: datetime) -> None:
    row.kf_id = info.kf_id[:32]
    row.kf_nick = info.kf_nick[:64]
    row.kf_headimgurl = info.kf_headimgurl[:500]
    row.kf_wx = info.kf_wx[:64]
    row.invite_wx = info.invite_wx[:64]
    row.invite_expire_time = _from_unix(info.invite_expire_time)
    row.invite_status = info.invite_status[:16]
    if row.kf_wx:
        row.unbound_since = None
    elif row.unbound_since is None:
        row.unbound_since = now
    row.last_seen_at = now
    row.gone_at = None


def _from_unix(seconds: int | None) -> datetime | None:
    """A unix time from WeChat, or None when it is absent or no plausible time at all."""
    if not seconds or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=QUOTA_TIMEZONE)
    except (OverflowError, OSError, ValueError):
        return None


SYNC_QUEUED_STALE_AFTER = timedelta(minutes=10)


def kf_accounts_sync_request(*, authorizer: Authorizer, actor: Actor) -> bool:
    """Queue a sync unless one is queued and not started yet; False when this request joined it.

    A queued mark older than SYNC_QUEUED_STALE_AFTER is taken as lost (a broker restart) and replaced.
    """
    now = timezone.now()
    claimed = (
        Authorizer.objects.filter(pk=authorizer.pk)
        .filter(Q(kf_sync_queued_at__isnull=True) | Q(kf_sync_queued_at__lt=now - SYNC_QUEUED_STALE_AFTER))
        .update(kf_sync_queued_at=now)
    )
    if claimed:
        kf_accounts_sync_send(authorizer_id=authorizer.pk, actor=actor)
    return bool(claimed)


def kf_accounts_sync_request_many(*, authorizer_ids: Sequence[int], actor: Actor) -> int:
    """``kf_accounts_sync_request`` for a set of merchants (the paced re-sync's slice, 843 a tick at
    100,000 merchants): one locked SELECT and one UPDATE for them all instead of an UPDATE each.
    Returns how many syncs were queued (the others joined one already queued)."""
    now = timezone.now()
    due = Q(kf_sync_queued_at__isnull=True) | Q(kf_sync_queued_at__lt=now - SYNC_QUEUED_STALE_AFTER)
    with transaction.atomic():
        pks = list(
            Authorizer.objects.filter(due, pk__in=list(authorizer_ids))
            .order_by("pk")  # one lock order for every claimer
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Authorizer.objects.filter(pk__in=pks).update(kf_sync_queued_at=now)
        for pk in pks:
            kf_accounts_sync_send(authorizer_id=pk, actor=actor)  # sent once this commits
    return len(pks)


def kf_accounts_sync_started(*, authorizer_id: int) -> None:
    """The queued sync is running: a request from now on needs a new one (it may want newer data)."""
    Authorizer.objects.filter(pk=authorizer_id).update(kf_sync_queued_at=None)
