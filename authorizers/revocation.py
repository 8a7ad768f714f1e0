"""The one way a merchant becomes revoked, whoever noticed it.

Four things notice a revocation: WeChat's ``unauthorized`` push, a token refresh answered with
61003, a call on the merchant's behalf answered with 61003, and WeChat no longer listing the
merchant (api_get_authorizer_list, read when a 61023 is recovered or by reconciliation). All call
``authorizer_revoke``, so the row ends the same way whichever saw it first. 61023 alone is not a
revocation (docs/wechat.md §6): the refresh token is re-read instead.

The rule for stored tokens: a revoked merchant keeps **no** token. The access token is dead, and
the refresh token is worthless (WeChat answers 61023 to it) and a liability if the database leaks;
a new authorization stores fresh ones.

This lives in its own module, not services.py, because tokens.py (which services.py builds on)
must revoke when a refresh is refused.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.models import Authorizer, AuthorizerStatus, Platform
from authorizers.platforms import component_appid_of, platform_detail
from wechat.errors import WeChatError


def authorizer_revoke(
    *,
    appid: str,
    actor: Actor,
    event_time: datetime | None = None,
    cause: WeChatError | None = None,
    platform: Platform | None = None,
) -> bool:
    """Mark the merchant's authorization of ``platform`` (None: the default one) revoked and forget
    its tokens; returns False when nothing changed. Its authorization of any other platform stays.

    ``event_time`` is the CreateTime of an ``unauthorized`` push: the push is applied unless a newer
    push was applied already (pushes arrive out of order), and becomes the newest one applied.
    Without it (a revocation seen on a call, ``cause`` being WeChat's answer) only an active merchant
    changes, so a revocation noticed by many calls at once is recorded once.
    """
    queryset = Authorizer.objects.filter(appid=appid)
    queryset = (
        queryset.filter(platform=platform)
        if platform is not None
        else queryset.filter(platform__component_appid=component_appid_of(None))
    )
    changes: dict[str, object] = {
        "status": AuthorizerStatus.REVOKED,
        "revoked_at": timezone.now(),
        "access_token_ciphertext": "",
        "access_token_expires_at": None,
        "refresh_token_ciphertext": "",
    }
    if event_time is not None:
        queryset = queryset.filter(Q(last_event_at__isnull=True) | Q(last_event_at__lte=event_time))
        changes["last_event_at"] = event_time
    else:
        queryset = queryset.filter(status=AuthorizerStatus.ACTIVE)
    with transaction.atomic():
        if not queryset.update(**changes):
            return False
        audit_record(
            actor=actor,
            # The push says WeChat told us; a call's answer says we found out.
            action=AuditAction.AUTHORIZER_UNAUTHORIZED if event_time is not None else AuditAction.AUTHORIZER_REVOKED,
            authorizer_appid=appid,
            outcome="revoked",
            errcode=cause.errcode if cause is not None else None,
            errmsg=cause.errmsg if cause is not None else "",
            rid=cause.rid if cause is not None else None,
            detail=platform_detail(platform),
        )
    return True
