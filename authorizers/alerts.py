"""Platform-level alerts: problems of the platform itself that no single merchant or deletion owns.

61004 (our caller IP is not on the platform's whitelist) fails every call the same way; failing
each deletion would throw away work an operator can rescue by fixing the whitelist. So it raises
one alert (logged once, shown in the admin) and deletions are held while it is open.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.services import Actor, audit_record
from authorizers.models import PlatformAlert
from wechat.errors import IpNotWhitelisted, WeChatError

log = logging.getLogger(__name__)

# The alert codes that stop work: while one is open, nothing is sent to WeChat on anyone's behalf.
BLOCKING_CODES = frozenset({PlatformAlert.Code.IP_NOT_WHITELISTED})


def platform_alerts_active() -> list[PlatformAlert]:
    """Open alerts, newest first: what the admin shows at the top of every page."""
    return list(PlatformAlert.objects.filter(cleared_at__isnull=True))


def platform_blocked() -> bool:
    return PlatformAlert.objects.filter(cleared_at__isnull=True, code__in=BLOCKING_CODES).exists()


def platform_alert_raise(*, code: str, error: WeChatError | None = None) -> PlatformAlert:
    """Open the alert (logged and audited once), or count one more occurrence of the open one."""
    now = timezone.now()
    errcode = error.errcode if error is not None else None
    errmsg = (error.errmsg if error is not None else "")[:255]
    open_alerts = PlatformAlert.objects.filter(code=code, cleared_at__isnull=True)
    if open_alerts.update(last_seen_at=now, occurrences=F("occurrences") + 1, errcode=errcode, errmsg=errmsg):
        return open_alerts.get()
    try:
        with transaction.atomic():
            alert = PlatformAlert.objects.create(code=code, errcode=errcode, errmsg=errmsg, last_seen_at=now)
    except IntegrityError:  # another process opened it first
        return PlatformAlert.objects.get(code=code, cleared_at__isnull=True)
    log.error("platform alert %s: %s (errcode %s: %s)", code, alert.get_code_display(), errcode, errmsg)
    audit_record(
        actor=Actor.system("platform alert"),
        action="platform.alert_raised",
        subject=code,
        outcome=code,
        errcode=errcode,
        errmsg=errmsg,
        rid=error.rid if error is not None else None,
    )
    return alert


def platform_alert_clear(*, code: str, actor: Actor) -> bool:
    """Close the open alert of this code (an operator fixed it, or a call succeeded again)."""
    cleared = PlatformAlert.objects.filter(code=code, cleared_at__isnull=True).update(
        cleared_at=timezone.now(), cleared_by=actor.label[:150]
    )
    if cleared:
        log.warning("platform alert %s cleared by %s", code, actor.label)
        audit_record(actor=actor, action="platform.alert_cleared", subject=code, outcome="cleared")
    return bool(cleared)


def platform_error_seen(error: WeChatError) -> None:
    """Every caller of WeChat reports errors here; the platform-level ones open an alert."""
    if isinstance(error, IpNotWhitelisted):
        platform_alert_raise(code=PlatformAlert.Code.IP_NOT_WHITELISTED, error=error)


def platform_call_succeeded() -> None:
    """A component call went through: whatever blocked the platform's calls is fixed."""
    if PlatformAlert.objects.filter(cleared_at__isnull=True, code__in=BLOCKING_CODES).exists():
        for code in BLOCKING_CODES:
            platform_alert_clear(code=code, actor=Actor.system("a WeChat call succeeded again"))
