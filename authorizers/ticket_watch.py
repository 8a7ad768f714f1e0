"""The verify-ticket watchdog (beat's `verify-ticket-watchdog`): WeChat pushes a ticket every 10
minutes; when they stop, the component token cannot be renewed. A stale ticket is logged, raises the
platform alert `verify_ticket_stale` and asks WeChat to push again, at most once per
VERIFY_TICKET_RESTART_MINUTES; the alert clears when a ticket arrives. Each platform served is
watched on its own: its tickets, its alert, its api_start_push_ticket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from audit.services import Actor
from authorizers.alerts import alert_clear, alert_raise
from authorizers.models import ComponentCredential, Platform, PlatformAlert
from authorizers.platforms import component_appid_of, platforms_active
from authorizers.tokens import verify_ticket_push_request

log = logging.getLogger(__name__)

_WATCH_SINCE_KEY = "authorizers:verify_ticket_watch_since"


@dataclass(frozen=True, slots=True)
class TicketWatch:
    stale: bool
    last_ticket_at: datetime | None
    push_requested: bool


def verify_tickets_watch(*, now: datetime | None = None) -> dict[str, TicketWatch]:
    """Every platform served, watched (the beat's task): component appid → what was found."""
    return {
        platform.component_appid: verify_ticket_watch(now=now, platform=platform) for platform in platforms_active()
    }


def verify_ticket_watch(*, now: datetime | None = None, platform: Platform | None = None) -> TicketWatch:
    """No ticket of the platform for VERIFY_TICKET_STALE_MINUTES → a log line, its platform alert
    (shown at the top of every admin page and on the dashboard) and its api_start_push_ticket, at
    most once per VERIFY_TICKET_RESTART_MINUTES (the same fence a 61005/61006 uses, across processes)."""
    now = now or timezone.now()
    appid = component_appid_of(platform)
    credential = ComponentCredential.objects.filter(component_appid=appid).first()
    last = credential.ticket_received_at if credential else None
    stale_after = timedelta(minutes=settings.VERIFY_TICKET_STALE_MINUTES)
    if last is None:
        # Never had one: count from when the watchdog first looked, not from the epoch.
        key = _WATCH_SINCE_KEY if appid == settings.WECHAT_COMPONENT_APPID else f"{_WATCH_SINCE_KEY}:{appid}"
        cache.add(key, now.timestamp(), timeout=None)
        since = datetime.fromtimestamp(float(cache.get(key, now.timestamp())), tz=now.tzinfo)
    else:
        since = last
    code = PlatformAlert.Code.VERIFY_TICKET_STALE
    if since > now - stale_after:
        alert_clear(code=code, actor=Actor.system("verify-ticket watchdog"), component_appid=appid)
        return TicketWatch(stale=False, last_ticket_at=last, push_requested=False)
    minutes = int((now - since).total_seconds() // 60)
    log.warning(
        "verify-ticket watchdog: no component_verify_ticket of %s for %d minutes (last %s)",
        appid,
        minutes,
        last.isoformat() if last else "never",
    )
    alert_raise(code=code, component_appid=appid)
    requested = verify_ticket_push_request(
        interval=timedelta(minutes=settings.VERIFY_TICKET_RESTART_MINUTES), platform=platform
    )
    return TicketWatch(stale=True, last_ticket_at=last, push_requested=requested)
