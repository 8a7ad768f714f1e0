"""Housekeeping the scheduler runs without anyone: merchants re-read and reconciled with WeChat's
list, kf lists re-synced, audit retention, and the verify-ticket watchdog.

Each function is one service a periodic task calls (CELERY_BEAT_SCHEDULE in settings installs them
into django-celery-beat, where staff can change or pause them). Merchant-level findings an operator
should see become merchant alerts and a stale verify ticket a platform alert (both through
authorizers/alerts.py: the dashboard lists the merchants', every console page shows the platform's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from audit.services import Actor, audit_events_prune, audit_record
from authorizers.alerts import alert_clear, alert_raise
from authorizers.client import wechat_client
from authorizers.dispatch import authorizer_info_refresh_send
from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential, PlatformAlert
from authorizers.policy import eligibility
from authorizers.tokens import verify_ticket_push_request, with_component_token
from cleanup.dispatch import kf_accounts_sync_send
from wechat.results import coerce_int

log = logging.getLogger(__name__)

MAX_LIST_PAGES = 200  # 100,000 merchants at 500 a page


# --- merchants: nightly re-read and reconciliation ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciliation:
    listed: int
    gone: list[str]
    unknown: list[str]


def merchants_reread() -> int:
    """Ask for every active merchant's info to be re-read (one task each); returns how many."""
    ids = list(Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE).values_list("pk", flat=True))
    for authorizer_id in ids:
        authorizer_info_refresh_send(authorizer_id=authorizer_id)
    return len(ids)


def authorizers_reconcile(*, actor: Actor) -> Reconciliation:
    """Compare our merchants with api_get_authorizer_list; flag the differences, change nothing else.

    An active merchant WeChat no longer lists has probably revoked without our seeing the push; one
    WeChat lists that we do not know authorized without our exchanging its code. Both need a person.
    """
    listed: set[str] = set()
    offset = 0
    client = wechat_client()
    for _ in range(MAX_LIST_PAGES):

        def read_page(token: str, offset: int = offset) -> dict[str, Any]:
            return client.get_authorizer_list(component_token=token, offset=offset, count=500)

        page = with_component_token(read_page)
        raw = page.get("list")
        items: list[Any] = raw if isinstance(raw, list) else []
        for item in items:
            appid = item.get("authorizer_appid") if isinstance(item, dict) else None
            if isinstance(appid, str) and appid:
                listed.add(appid[:32])
        offset += len(items)
        total = coerce_int(page.get("total_count")) or 0
        if not items or offset >= total:
            break
    ours = dict(Authorizer.objects.values_list("appid", "status"))
    gone = sorted(a for a, status in ours.items() if status == AuthorizerStatus.ACTIVE and a not in listed)
    unknown = sorted(a for a in listed if a not in ours)
    gone_code, unknown_code = PlatformAlert.Code.MERCHANT_GONE, PlatformAlert.Code.MERCHANT_UNKNOWN
    for appid in gone:
        alert_raise(
            code=gone_code,
            authorizer_appid=appid,
            message=f"{appid} is active here but api_get_authorizer_list no longer lists it (revoked unseen?)",
        )
    for appid in unknown:
        alert_raise(
            code=unknown_code,
            authorizer_appid=appid,
            message=f"api_get_authorizer_list lists {appid}, which never completed an authorization here",
        )
    # Differences that went away (re-authorized, revoked since, now known) clear their alert.
    still = {(gone_code, a) for a in gone} | {(unknown_code, a) for a in unknown}
    for code, appid in PlatformAlert.objects.filter(
        code__in=[gone_code, unknown_code], cleared_at__isnull=True
    ).values_list("code", "authorizer_appid"):
        if (code, appid) not in still:
            alert_clear(code=code, authorizer_appid=appid, actor=actor)
    audit_record(
        actor=actor,
        action="authorizers.reconciled",
        outcome="ok" if not (gone or unknown) else "differences",
        detail={"listed": len(listed), "gone": gone[:100], "unknown": unknown[:100]},
    )
    return Reconciliation(listed=len(listed), gone=gone, unknown=unknown)


# --- kf lists ----------------------------------------------------------------------------------


def kf_accounts_resync_all() -> int:
    """Ask for every eligible merchant's kf list to be re-read; returns how many."""
    count = 0
    for authorizer in Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE):
        if eligibility(authorizer).eligible:
            kf_accounts_sync_send(authorizer_id=authorizer.pk, label="periodic kf re-sync")
            count += 1
    return count


# --- audit retention ---------------------------------------------------------------------------


def audit_retention_apply(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted = audit_events_prune(older_than=cutoff, batch=settings.AUDIT_RETENTION_BATCH)
    if deleted:
        log.info("audit retention: %d events older than %s deleted", deleted, cutoff.isoformat())
        # Recorded after the deletion, so the record of it is never what it deletes.
        audit_record(
            actor=Actor.system("audit retention"),
            action="audit.pruned",
            outcome="ok",
            detail={"deleted": deleted, "before": cutoff.isoformat(), "days": settings.AUDIT_RETENTION_DAYS},
        )
    return deleted


# --- the verify-ticket watchdog ------------------------------------------------------------------

_WATCH_SINCE_KEY = "cleanup:verify_ticket_watch_since"


@dataclass(frozen=True, slots=True)
class TicketWatch:
    stale: bool
    last_ticket_at: datetime | None
    push_requested: bool


def verify_ticket_watch(*, now: datetime | None = None) -> TicketWatch:
    """No ticket for VERIFY_TICKET_STALE_MINUTES → a log line, a platform alert (shown at the top of
    every admin page and on the dashboard) and api_start_push_ticket, at most once per
    VERIFY_TICKET_RESTART_MINUTES (the same fence a 61005/61006 uses, across processes)."""
    now = now or timezone.now()
    credential = ComponentCredential.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).first()
    last = credential.ticket_received_at if credential else None
    stale_after = timedelta(minutes=settings.VERIFY_TICKET_STALE_MINUTES)
    if last is None:
        # Never had one: count from when the watchdog first looked, not from the epoch.
        cache.add(_WATCH_SINCE_KEY, now.timestamp(), timeout=None)
        since = datetime.fromtimestamp(float(cache.get(_WATCH_SINCE_KEY, now.timestamp())), tz=now.tzinfo)
    else:
        since = last
    code = PlatformAlert.Code.VERIFY_TICKET_STALE
    if since > now - stale_after:
        alert_clear(code=code, actor=Actor.system("verify-ticket watchdog"))
        return TicketWatch(stale=False, last_ticket_at=last, push_requested=False)
    minutes = int((now - since).total_seconds() // 60)
    log.warning(
        "verify-ticket watchdog: no component_verify_ticket for %d minutes (last %s)",
        minutes,
        last.isoformat() if last else "never",
    )
    alert_raise(code=code)
    requested = verify_ticket_push_request(interval=timedelta(minutes=settings.VERIFY_TICKET_RESTART_MINUTES))
    return TicketWatch(stale=True, last_ticket_at=last, push_requested=requested)
