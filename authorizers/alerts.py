"""Alerts: what a person must look at, raised and cleared only here (the one alert service).

Two kinds share `PlatformAlert` and this API:

- platform-wide (no merchant): 61004 (our caller IP is not on the platform's whitelist) fails every
  call the same way; failing each deletion would throw away work an operator can rescue by fixing
  the whitelist. So it raises one alert (logged once, shown at the top of every console page) and
  deletions are held while it is open. A stale verify ticket is the other one.
- per merchant (``authorizer_appid`` set): the nightly reconciliation's findings, a merchant WeChat
  no longer lists or one it lists that we do not know; the dashboard lists them.

At most one alert of a code is open per merchant (or for the platform); raising it again counts one
more occurrence; clearing it and raising it later opens a new row, so the history stays.

Every alert is about one platform (``component_appid``; None below means the default platform, the
environment's): a 61004 on platform A opens A's alert and holds A's deletions only, and a merchant
that authorized two platforms has alerts about each authorization apart.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import django.dispatch
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.models import PlatformAlert
from wechat.errors import MerchantBlocked, PlatformBlocked, RefreshTokenInvalid, WeChatError

log = logging.getLogger(__name__)

Code = PlatformAlert.Code
# The platform-wide codes that stop work: while one is open, deletions are held, not sent. Each is a
# PlatformBlocked's alert_code (docs/wechat.md §11); a component call that goes through clears them.
BLOCKING_CODES = frozenset(
    {
        Code.IP_NOT_WHITELISTED,
        Code.VERIFY_TICKET_MISSING,
        Code.COMPONENT_TICKET_INVALID,
        Code.COMPONENT_INVALID,
        Code.WRONG_TOKEN_KIND,
        Code.PLATFORM_QUOTA_EXCEEDED,
    }
)
# The per-merchant codes that hold that merchant's deletions until one of its calls goes through.
MERCHANT_HOLD_CODES = frozenset({Code.MERCHANT_IP_NOT_WHITELISTED, Code.REFRESH_TOKEN_INVALID})

# Sent with ``component_appid`` when the last open blocking alert of that platform is cleared: the
# apps above resume the work they held for it (kfaccounts sends its held deletions at once instead of
# at their next re-check).
platform_unblocked = django.dispatch.Signal()


def _platform(component_appid: str | None) -> str:
    return settings.WECHAT_COMPONENT_APPID if component_appid is None else component_appid


def _named(platform: str) -> dict[str, str]:
    # As platforms.platform_detail: the default platform's events read as before platforms existed.
    return {} if platform == settings.WECHAT_COMPONENT_APPID else {"component_appid": platform}


def alerts_active(authorizer_appid: str | None = None, component_appid: str | None = None) -> list[PlatformAlert]:
    """Open alerts, newest first. ``authorizer_appid`` None: every one; ``""``: the platform-wide ones
    (the banner at the top of every console page); an appid: that merchant's. ``component_appid``
    None: of every platform."""
    open_alerts = PlatformAlert.objects.filter(cleared_at__isnull=True)
    if authorizer_appid is not None:
        open_alerts = open_alerts.filter(authorizer_appid=authorizer_appid)
    if component_appid is not None:
        open_alerts = open_alerts.filter(component_appid=component_appid)
    return list(open_alerts.order_by("-first_seen_at", "-id"))


def platform_blocked(component_appid: str | None = None) -> bool:
    return PlatformAlert.objects.filter(
        cleared_at__isnull=True,
        code__in=BLOCKING_CODES,
        authorizer_appid="",
        component_appid=_platform(component_appid),
    ).exists()


def platforms_blocked() -> set[str]:
    """The component appids of every platform a blocking alert holds now."""
    return set(
        PlatformAlert.objects.filter(cleared_at__isnull=True, code__in=BLOCKING_CODES, authorizer_appid="")
        .values_list("component_appid", flat=True)
        .distinct()
    )


def alert_raise(
    *,
    code: str,
    authorizer_appid: str = "",
    message: str = "",
    error: WeChatError | None = None,
    component_appid: str | None = None,
) -> PlatformAlert:
    """Open the alert (logged and audited once), or count one more occurrence of the open one."""
    now = timezone.now()
    platform = _platform(component_appid)
    errcode = error.errcode if error is not None else None
    errmsg = (error.errmsg if error is not None else "")[:255]
    message = message[:500]
    open_alerts = PlatformAlert.objects.filter(
        code=code, component_appid=platform, authorizer_appid=authorizer_appid, cleared_at__isnull=True
    )
    if open_alerts.update(
        last_seen_at=now, occurrences=F("occurrences") + 1, errcode=errcode, errmsg=errmsg, message=message
    ):
        return open_alerts.get()
    try:
        with transaction.atomic():
            alert = PlatformAlert.objects.create(
                code=code,
                component_appid=platform,
                authorizer_appid=authorizer_appid,
                message=message,
                errcode=errcode,
                errmsg=errmsg,
                last_seen_at=now,
            )
    except IntegrityError:  # another process opened it first
        return open_alerts.get()
    other = "" if platform == settings.WECHAT_COMPONENT_APPID else f" of platform {platform}"
    if authorizer_appid:
        log.warning(
            "merchant alert %s for %s%s: %s", code, authorizer_appid, other, message or alert.get_code_display()
        )
    else:
        log.error("platform alert %s%s: %s (errcode %s: %s)", code, other, alert.get_code_display(), errcode, errmsg)
    audit_record(
        actor=Actor.system("platform alert"),
        action=AuditAction.ALERT_RAISED,
        authorizer_appid=authorizer_appid,
        subject=code,
        outcome=code,
        errcode=errcode,
        errmsg=(errmsg or message)[:255],
        rid=error.rid if error is not None else None,
        detail=_named(platform),
    )
    return alert


def alert_clear(*, code: str, actor: Actor, authorizer_appid: str = "", component_appid: str | None = None) -> bool:
    """Close the open alert of this code (an operator fixed it, a call succeeded again, the
    difference went away)."""
    platform = _platform(component_appid)
    cleared = PlatformAlert.objects.filter(
        code=code, component_appid=platform, authorizer_appid=authorizer_appid, cleared_at__isnull=True
    ).update(cleared_at=timezone.now(), cleared_by=actor.label[:150])
    if cleared:
        where = f"merchant alert {code} for {authorizer_appid}" if authorizer_appid else f"platform alert {code}"
        other = "" if platform == settings.WECHAT_COMPONENT_APPID else f" of platform {platform}"
        log.warning("%s%s cleared by %s", where, other, actor.label)
        audit_record(
            actor=actor,
            action=AuditAction.ALERT_CLEARED,
            authorizer_appid=authorizer_appid,
            subject=code,
            outcome="cleared",
            detail=_named(platform),
        )
        if code in BLOCKING_CODES and not authorizer_appid and not platform_blocked(platform):
            platform_unblocked.send(sender=PlatformAlert, actor=actor, component_appid=platform)
    return bool(cleared)


def platform_error_seen(error: WeChatError, component_appid: str | None = None) -> None:
    """Every caller of WeChat reports errors here, naming the platform whose credentials or token
    the call used; the platform-level ones open that platform's alert."""
    if isinstance(error, PlatformBlocked) and error.alert_code in BLOCKING_CODES:
        alert_raise(
            code=error.alert_code,
            error=error,
            message=f"{error.path or ''} {error.errmsg}".strip(),
            component_appid=component_appid,
        )


def platform_recheck_claim(*, interval: timedelta, component_appid: str | None = None) -> bool:
    """While a blocking alert of the platform is open, one caller per ``interval`` (across every
    process) may probe it."""
    now = timezone.now()
    return bool(
        PlatformAlert.objects.filter(
            cleared_at__isnull=True,
            code__in=BLOCKING_CODES,
            component_appid=_platform(component_appid),
            authorizer_appid="",
            last_seen_at__lt=now - interval,
        ).update(last_seen_at=now)
    )


def platform_call_succeeded(component_appid: str | None = None) -> None:
    """A component call of the platform went through: whatever blocked its calls is fixed."""
    if platform_blocked(component_appid):
        for code in BLOCKING_CODES:
            alert_clear(code=code, actor=Actor.system("a WeChat call succeeded again"), component_appid=component_appid)


def merchant_error_seen(*, authorizer_appid: str, error: WeChatError, component_appid: str | None = None) -> None:
    """A merchant's own blocker (40164/40090, 48004, 50002, an unrecovered 61023): an alert on its
    authorization of the platform."""
    if isinstance(error, (MerchantBlocked, RefreshTokenInvalid)):
        alert_raise(
            code=error.reason,
            authorizer_appid=authorizer_appid,
            error=error,
            message=f"{error.path or ''} errcode {error.errcode}: {error.errmsg}".strip(),
            component_appid=component_appid,
        )


def merchant_held(authorizer_appid: str, component_appid: str | None = None) -> bool:
    return PlatformAlert.objects.filter(
        cleared_at__isnull=True,
        code__in=MERCHANT_HOLD_CODES,
        component_appid=_platform(component_appid),
        authorizer_appid=authorizer_appid,
    ).exists()


def merchant_call_succeeded(authorizer_appid: str, component_appid: str | None = None) -> bool:
    """A call on the merchant's behalf went through: its holding alerts are cleared. True if any was."""
    cleared = False
    for code in MERCHANT_HOLD_CODES:
        cleared |= alert_clear(
            code=code,
            authorizer_appid=authorizer_appid,
            actor=Actor.system("a WeChat call succeeded again"),
            component_appid=component_appid,
        )
    return cleared
