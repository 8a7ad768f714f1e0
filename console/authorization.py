"""The links staff send a merchant so that it authorizes the platform.

The link to send is the platform's own ``/wechat/authorize/`` page: WeChat only accepts its
authorization page when opened from the platform's registered domain, and a pre-auth code lives
10 minutes, so the page makes a fresh one each time it is opened. The direct PC and mobile links
are shown too, for opening on the spot (they expire with their pre-auth code).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authorizers import services
from wechat.errors import NoVerifyTicket, WeChatError

AUTH_TYPES = (
    (1, _("Official Accounts only")),
    (2, _("Mini Programs only")),
    (3, _("Official Accounts and Mini Programs")),
)
PRE_AUTH_CODE_LIFETIME = timedelta(minutes=10)


class LinksUnavailable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AuthorizationLinks:
    pc: str
    mobile: str
    expires_at: datetime


def auth_type_from(value: str | None, *, default: int) -> int:
    try:
        chosen = int(value or default)
    except ValueError:
        return default
    return chosen if chosen in dict(AUTH_TYPES) else default


def _public(request: HttpRequest, path: str) -> str:
    return settings.PUBLIC_BASE_URL + path if settings.PUBLIC_BASE_URL else request.build_absolute_uri(path)


def platform_page_url(*, request: HttpRequest, auth_type: int) -> str:
    return _public(request, reverse("wechat-authorize")) + "?" + urlencode({"auth_type": auth_type})


def authorization_links(*, request: HttpRequest, auth_type: int) -> AuthorizationLinks:
    try:
        code = services.preauth_code_create()
    except NoVerifyTicket as exc:
        raise LinksUnavailable(
            gettext("no verify ticket yet (%(why)s); WeChat pushes one every 10 minutes") % {"why": exc}
        ) from None
    except WeChatError as exc:
        raise LinksUnavailable(
            gettext("WeChat refused a pre-auth code: errcode %(errcode)s (%(errmsg)s)")
            % {"errcode": exc.errcode, "errmsg": exc.errmsg}
        ) from None
    query = {
        "component_appid": settings.WECHAT_COMPONENT_APPID,
        "pre_auth_code": code,
        "redirect_uri": _public(request, reverse("wechat-authorize-callback")),
        "auth_type": str(auth_type),
    }
    open_base = getattr(settings, "WECHAT_OPEN_BASE", "https://open.weixin.qq.com")
    mobile_query = {"action": "bindcomponent", "no_scan": "1", **query}
    return AuthorizationLinks(
        pc=f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage?{urlencode(query)}",
        mobile=f"{open_base}/wxaopen/safe/bindcomponent?{urlencode(mobile_query)}#wechat_redirect",
        expires_at=timezone.now() + PRE_AUTH_CODE_LIFETIME,
    )
