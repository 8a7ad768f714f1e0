"""The links of the authorization flow: WeChat's pages, the redirect_uri and its one-time ``state``.

WeChat serves ``componentloginpage`` (PC) and ``bindcomponent`` (phone, H5) only to a browser that
arrives from the platform's registered domain: it checks the Referer. So the platform shows a page of
its own whose buttons link there (the page sends its origin), never a bare redirect and never a link
pasted elsewhere. A link staff send a merchant points at that page (``authorize_page_url``).

The ``redirect_uri`` carries a signed, one-time ``state`` in its path: the callback checks it before any call to
WeChat. It is not bound to a browser cookie, because a merchant may start on a computer and finish
in WeChat's in-app browser.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authorizers.flow_errors import BadChoice, BadState
from authorizers.models import AuthorizationStateUse, Platform
from authorizers.platforms import component_appid_of

# auth_type (docs/wechat.md §4), the values of WeChat's current page. Required: always sent.
AUTH_TYPES: dict[int, Any] = {
    1: _("Official Accounts"),
    2: _("Mini Programs"),
    3: _("Official Accounts and Mini Programs"),
    4: _("推客 (promoter) accounts"),
    5: _("Channels (视频号) accounts"),
    6: _("All account kinds"),
    8: _("带货助手 (sales assistant) accounts"),
}
# The kf APIs' permission sets each account kind can grant (docs/wechat.md §10): Official Accounts
# 1 消息管理 and 6 微信多客服, Mini Programs 19 小程序客服管理. ``category_id_list`` limits WeChat's
# page to these, so the merchant is not asked for sets the platform has no use for.
KF_CATEGORY_IDS: tuple[int, ...] = (1, 6, 19)
BIZ_APPID_RE = re.compile(r"wx[0-9A-Za-z]{16}")
STATE_SALT = "kfplatform.authorizers.state"


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """Which accounts and permission sets WeChat's page offers.

    ``auth_type`` is always sent (WeChat marks it required); ``biz_appid``, when set, is sent with it
    and wins (WeChat gives it priority; WxJava and silenceper send both). ``kf_sets_only`` adds
    ``category_id_list`` with the kf permission sets.
    """

    auth_type: int | None = None
    biz_appid: str | None = None
    kf_sets_only: bool = False

    @property
    def effective_auth_type(self) -> int:
        return self.auth_type or settings.WECHAT_AUTH_TYPE

    def query(self) -> dict[str, str]:
        query = {"auth_type": str(self.effective_auth_type)}
        if self.biz_appid:
            query["biz_appid"] = self.biz_appid
        if self.kf_sets_only:
            query["category_id_list"] = "|".join(str(i) for i in KF_CATEGORY_IDS)
        return query

    def page_query(self) -> dict[str, str]:
        """The same choice as our own page's query string (what a link staff send carries)."""
        query: dict[str, str] = {}
        if self.auth_type:
            query["auth_type"] = str(self.auth_type)
        if self.biz_appid:
            query["biz_appid"] = self.biz_appid
        if self.kf_sets_only:
            query["sets"] = "kf"
        return query


def account_choice_parse(*, auth_type: str | None, biz_appid: str | None, sets: str | None = None) -> AccountChoice:
    auth_type = (auth_type or "").strip() or None
    biz_appid = (biz_appid or "").strip() or None
    sets = (sets or "").strip() or None
    if biz_appid and not BIZ_APPID_RE.fullmatch(biz_appid):
        raise BadChoice(gettext("biz_appid must be an appid: wx followed by 16 letters or digits"))
    if auth_type and (not auth_type.isdigit() or int(auth_type) not in AUTH_TYPES):
        raise BadChoice(gettext("auth_type must be one of %(values)s") % {"values": ", ".join(map(str, AUTH_TYPES))})
    if sets not in (None, "kf", "all"):
        raise BadChoice(gettext("sets must be kf or all"))
    return AccountChoice(
        auth_type=int(auth_type) if auth_type else None, biz_appid=biz_appid, kf_sets_only=sets == "kf"
    )


def public_base_url(request_base: str) -> str:
    """The platform's public origin: PUBLIC_BASE_URL (required in production), else the request's."""
    return (settings.PUBLIC_BASE_URL or request_base).rstrip("/")


def _default(platform: Platform | None) -> bool:
    return platform is None or platform.from_environment


def authorize_page_url(*, base_url: str, choice: AccountChoice | None = None, platform: Platform | None = None) -> str:
    """The link to send a merchant: the platform's own page, which then links to WeChat's (the
    default platform's is the path it always had)."""
    query = (choice or AccountChoice()).page_query()
    path = (
        reverse("wechat-authorize")
        if _default(platform)
        else reverse("wechat-platform-authorize", args=[component_appid_of(platform)])
    )
    return f"{base_url.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")


@dataclass(frozen=True, slots=True)
class AuthorizationLinks:
    pc_url: str  # componentloginpage: a QR code to scan with WeChat
    mobile_url: str  # bindcomponent H5: opened inside WeChat on the phone
    redirect_uri: str


def authorization_links(
    *, base_url: str, pre_auth_code: str, choice: AccountChoice, platform: Platform | None = None
) -> AuthorizationLinks:
    # ``state`` travels in the path: WeChat drops or &amp;-escapes a redirect_uri's query parameters
    # after the first (docs/wechat.md §4), and appends its own (auth_code, expires_in).
    state = state_issue(platform)
    callback = (
        reverse("wechat-authorize-callback-state", args=[state])
        if _default(platform)
        else reverse("wechat-platform-authorize-callback-state", args=[component_appid_of(platform), state])
    )
    redirect_uri = f"{base_url.rstrip('/')}{callback}"
    common = {
        "component_appid": component_appid_of(platform),
        "pre_auth_code": pre_auth_code,
        "redirect_uri": redirect_uri,
        **choice.query(),
    }
    pc = f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage?{urlencode(common)}"
    mobile_query = {"action": "bindcomponent", "no_scan": "1", **common}
    mobile = f"{settings.WECHAT_OPEN_BASE}/wxaopen/safe/bindcomponent?{urlencode(mobile_query)}#wechat_redirect"
    return AuthorizationLinks(pc_url=pc, mobile_url=mobile, redirect_uri=redirect_uri)


def state_issue(platform: Platform | None = None) -> str:
    """A signed one-time state; another platform's names it (``p``), so its callback alone takes it."""
    payload = {"n": secrets.token_urlsafe(16)}
    if not _default(platform):
        payload["p"] = component_appid_of(platform)
    return signing.dumps(payload, salt=STATE_SALT, compress=False)


def state_consume(*, state: str, platform: Platform | None = None) -> None:
    """Accept a ``state`` once, on the callback of the platform it was issued for; raises BadState
    otherwise. Nothing is called before this holds."""
    if not state or len(state) > 512:
        raise BadState("the state parameter is missing")
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=settings.WECHAT_AUTHORIZE_STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise BadState("this authorization link has expired: start again") from None
    except signing.BadSignature:
        raise BadState("the state parameter is not one this platform issued") from None
    nonce = payload.get("n") if isinstance(payload, dict) else None
    if not isinstance(nonce, str) or not 0 < len(nonce) <= 64:
        raise BadState("the state parameter is not one this platform issued")
    issued_for = payload.get("p") or settings.WECHAT_COMPONENT_APPID
    if issued_for != component_appid_of(platform):
        raise BadState("this authorization link belongs to another platform")
    try:
        with transaction.atomic():
            AuthorizationStateUse.objects.create(nonce=nonce)
    except IntegrityError:
        raise BadState("this authorization link was used already: start again") from None
