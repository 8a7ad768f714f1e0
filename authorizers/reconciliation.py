"""Our merchants checked against WeChat's: every active merchant's info re-read once per
MERCHANT_REREAD_SECONDS, a slice each tick (dbkit/pacing.py), and nightly the list compared with
api_get_authorizer_list, read 500 a page.

WeChat's list is the authority on who is authorized (docs/wechat.md §5, §6). A merchant it lists with
a refresh token that is revoked here, or active here with its refresh token refused (an unrecovered
61023), is restored with that token (``tokens.authorizer_restore``); when that fails, an alert says
so. Other differences become merchant alerts for a person (authorizers/alerts.py).

Each platform is reconciled on its own, with its own list: WeChat lists a platform's authorizations,
so an account that authorized two platforms is compared twice, each time with that platform's row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.alerts import alert_clear, alert_raise
from authorizers.client import wechat_client
from authorizers.dispatch import authorizer_info_refresh_send
from authorizers.models import Authorizer, AuthorizerStatus, Platform, PlatformAlert
from authorizers.platforms import platform_default, platform_detail, platforms_active
from authorizers.tokens import authorizer_restore, with_component_token
from dbkit.pacing import paced_slice_claim
from wechat.errors import WeChatError
from wechat.results import parse_authorizer_list

log = logging.getLogger(__name__)

LIST_PAGE = 500  # the most api_get_authorizer_list answers at once
# A bound against a list that never ends: 1,000,000 merchants. A list cut short flags no one gone.
MAX_LIST_PAGES = 2000
RECONCILE_CHUNK = 2000  # our active merchants read at a time, to compare with the list


@dataclass(frozen=True, slots=True)
class Reconciliation:
    listed: int
    gone: list[str]
    unknown: list[str]
    restored: list[str] = field(default_factory=list)


def merchants_reread_tick() -> int:
    """Ask for this tick's slice of active merchants' info to be re-read, those planned longest ago
    first (one task each); returns how many."""
    ids = paced_slice_claim(
        Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE),
        stamp="info_reread_planned_at",
        period=timedelta(seconds=settings.MERCHANT_REREAD_SECONDS),
        tick=timedelta(seconds=settings.PACED_TICK_SECONDS),
        limit=settings.PACED_SLICE_MAX,
    )
    for authorizer_id in ids:
        authorizer_info_refresh_send(authorizer_id=authorizer_id)
    return len(ids)


def platforms_reconcile(*, actor: Actor) -> dict[str, Reconciliation]:
    """Every platform served, reconciled in turn (the nightly task): component appid → its result."""
    return {p.component_appid: authorizers_reconcile(actor=actor, platform=p) for p in platforms_active()}


def authorizers_reconcile(*, actor: Actor, platform: Platform | None = None) -> Reconciliation:
    """Compare a platform's merchants with its api_get_authorizer_list; flag the differences, change
    nothing else (``platform`` None: the default one).

    An active merchant WeChat no longer lists has probably revoked without our seeing the push; one
    WeChat lists that we do not know authorized without our exchanging its code. Both need a person.

    Neither side is loaded whole (100,000 merchants): each page of WeChat's list is looked up here by
    appid, and our active merchants are then walked by primary key, RECONCILE_CHUNK at a time, against
    the set of listed appids, the one thing kept for the whole run (a few MB at that size).
    """
    platform = platform or platform_default()
    appid_of_platform = platform.component_appid
    ours = Authorizer.objects.filter(platform=platform)
    alerts = PlatformAlert.objects.filter(component_appid=appid_of_platform, cleared_at__isnull=True)
    held = set(alerts.filter(code=PlatformAlert.Code.REFRESH_TOKEN_INVALID).values_list("authorizer_appid", flat=True))
    wechat_list = _WeChatList(platform)
    listed: set[str] = set()
    strangers: set[str] = set()
    to_restore: list[str] = []
    refresh_tokens: dict[str, str] = {}  # of the merchants to restore only
    for page in wechat_list.pages():
        listed.update(page)
        known = dict(ours.filter(appid__in=list(page)).values_list("appid", "status"))
        strangers.update(a for a in page if a not in known)
        for appid, status in known.items():
            if status == AuthorizerStatus.REVOKED or appid in held:
                to_restore.append(appid)
                if page[appid]:
                    refresh_tokens[appid] = page[appid]
    # Only a list read to its end says who is missing from it.
    gone = sorted(a for a in _active_appids(platform) if a not in listed) if wechat_list.complete else []
    unknown = sorted(strangers)
    gone_code, unknown_code = PlatformAlert.Code.MERCHANT_GONE, PlatformAlert.Code.MERCHANT_UNKNOWN
    for appid in gone:
        alert_raise(
            code=gone_code,
            authorizer_appid=appid,
            message=f"{appid} is active here but api_get_authorizer_list no longer lists it (revoked unseen?)",
            component_appid=appid_of_platform,
        )
    for appid in unknown:
        alert_raise(
            code=unknown_code,
            authorizer_appid=appid,
            message=f"api_get_authorizer_list lists {appid}, which never completed an authorization here",
            component_appid=appid_of_platform,
        )
    restored = _restore_listed(to_restore, refresh_tokens, actor, platform)
    # Differences that went away (re-authorized, revoked since, now known) clear their alert.
    still = {(gone_code, a) for a in gone} | {(unknown_code, a) for a in unknown}
    for code, appid in alerts.filter(code__in=[gone_code, unknown_code]).values_list("code", "authorizer_appid"):
        if (code, appid) not in still and (wechat_list.complete or code != gone_code):
            alert_clear(code=code, authorizer_appid=appid, actor=actor, component_appid=appid_of_platform)
    audit_record(
        actor=actor,
        action=AuditAction.AUTHORIZER_RECONCILED,
        outcome="ok" if not (gone or unknown) else "differences",
        detail={
            "listed": len(listed),
            "gone": gone[:100],
            "unknown": unknown[:100],
            "restored": restored[:100],
            **platform_detail(platform),
        },
    )
    return Reconciliation(listed=len(listed), gone=gone, unknown=unknown, restored=restored)


@dataclass
class _WeChatList:
    """A platform's api_get_authorizer_list read LIST_PAGE at a time; ``complete`` once its end was
    reached."""

    platform: Platform
    complete: bool = False

    def pages(self) -> Iterator[dict[str, str]]:
        """Each page as {appid: its refresh token, "" when WeChat lists none}."""
        client = wechat_client(self.platform)
        offset = 0
        for _ in range(MAX_LIST_PAGES):

            def read_page(token: str, offset: int = offset) -> dict[str, Any]:
                return client.get_authorizer_list(component_token=token, offset=offset, count=LIST_PAGE)

            total, items = parse_authorizer_list(with_component_token(read_page, self.platform))
            yield {item.authorizer_appid[:32]: item.refresh_token or "" for item in items}
            offset += len(items)
            if not items or offset >= total:
                self.complete = True
                return
        log.warning("api_get_authorizer_list still not at its end after %d pages: no merchant flagged gone", offset)


def _active_appids(platform: Platform) -> Iterator[str]:
    """The platform's active merchants' appids, walked by primary key RECONCILE_CHUNK at a time."""
    after = 0
    while True:
        chunk = list(
            Authorizer.objects.filter(platform=platform, status=AuthorizerStatus.ACTIVE, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "appid")[:RECONCILE_CHUNK]
        )
        if not chunk:
            return
        yield from (appid for _, appid in chunk)
        after = chunk[-1][0]


def _restore_listed(appids: list[str], refresh_tokens: dict[str, str], actor: Actor, platform: Platform) -> list[str]:
    """Restore each merchant WeChat still lists; an alert on each that cannot be (its refresh token
    missing from the list or refused)."""
    code = PlatformAlert.Code.REFRESH_TOKEN_INVALID
    restored = []
    for appid in dict.fromkeys(appids):
        token = refresh_tokens.get(appid)
        if token is None:
            alert_raise(
                code=code,
                authorizer_appid=appid,
                message="WeChat still lists it, without a refresh token: it must authorize again",
                component_appid=platform.component_appid,
            )
            continue
        try:
            if authorizer_restore(appid=appid, refresh_token=token, actor=actor, platform=platform):
                restored.append(appid)
                alert_clear(code=code, authorizer_appid=appid, actor=actor, component_appid=platform.component_appid)
                authorizer_info_refresh_send(authorizer_id=Authorizer.objects.get(appid=appid, platform=platform).pk)
        except WeChatError as exc:
            alert_raise(
                code=code,
                authorizer_appid=appid,
                error=exc,
                message=f"WeChat still lists it, but refused the listed refresh token (errcode {exc.errcode})",
                component_appid=platform.component_appid,
            )
    return restored
