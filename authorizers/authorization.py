"""The links of the authorization flow: WeChat's pages, the redirect_uri and its one-time ``state``.

WeChat serves ``componentloginpage`` (PC) and ``bindcomponent`` (phone, H5) only to a browser that
arrives from the platform's registered domain: it checks the Referer. So the platform shows a page of
its own whose buttons link there (the page sends its origin), never a bare redirect and never a link
pasted elsewhere. A link staff send a merchant points at that page (``authorize_page_url``).

The ``redirect_uri`` carries a signed, one-time ``state``: the callback checks it before any call to
WeChat. It is not bound to a browser cookie, because a merchant may start on a computer and finish
in WeChat's in-app browser.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from authorizers.models import AuthorizationStateUse

# auth_type (docs/wechat.md §4): 1 Official Accounts only, 2 Mini Programs only, 3 both.
AUTH_TYPES = {1: "Official Accounts", 2: "Mini Programs", 3: "Official Accounts and Mini Programs"}
BIZ_APPID_RE = re.compile(r"wx[0-9A-Za-z]{16}")
STATE_SALT = "kfplatform.authorizers.state"


class BadChoice(ValueError):
    """auth_type / biz_appid that WeChat would not accept."""


class BadState(ValueError):
    """A callback whose ``state`` is missing, forged, expired or used already."""


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """Which accounts WeChat's page offers: an ``auth_type``, or exactly one account (``biz_appid``)."""

    auth_type: int | None = None
    biz_appid: str | None = None

    def query(self) -> dict[str, str]:
        # "auth_type、biz_appid 两个字段互斥" (docs/wechat.md §4): never both.
        if self.biz_appid:
            return {"biz_appid": self.biz_appid}
        return {"auth_type": str(self.auth_type or settings.WECHAT_AUTH_TYPE)}


def account_choice_parse(*, auth_type: str | None, biz_appid: str | None) -> AccountChoice:
    auth_type = (auth_type or "").strip() or None
    biz_appid = (biz_appid or "").strip() or None
    if auth_type and biz_appid:
        raise BadChoice("auth_type and biz_appid are mutually exclusive: give one of them")
    if biz_appid:
        if not BIZ_APPID_RE.fullmatch(biz_appid):
            raise BadChoice("biz_appid must be an appid: wx followed by 16 letters or digits")
        return AccountChoice(biz_appid=biz_appid)
    if auth_type:
        if not auth_type.isdigit() or int(auth_type) not in AUTH_TYPES:
            raise BadChoice("auth_type must be 1 (Official Accounts), 2 (Mini Programs) or 3 (both)")
        return AccountChoice(auth_type=int(auth_type))
    return AccountChoice()


def public_base_url(request_base: str) -> str:
    """The platform's public origin: PUBLIC_BASE_URL (required in production), else the request's."""
    return (settings.PUBLIC_BASE_URL or request_base).rstrip("/")


def authorize_page_url(*, base_url: str, choice: AccountChoice | None = None) -> str:
    """The link to send a merchant: the platform's own page, which then links to WeChat's."""
    choice = choice or AccountChoice()
    query = {k: v for k, v in (("auth_type", choice.auth_type), ("biz_appid", choice.biz_appid)) if v}
    path = reverse("wechat-authorize")
    return f"{base_url.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")


@dataclass(frozen=True, slots=True)
class AuthorizationLinks:
    pc_url: str  # componentloginpage: a QR code to scan with WeChat
    mobile_url: str  # bindcomponent H5: opened inside WeChat on the phone
    redirect_uri: str


def authorization_links(*, base_url: str, pre_auth_code: str, choice: AccountChoice) -> AuthorizationLinks:
    redirect_uri = f"{base_url.rstrip('/')}{reverse('wechat-authorize-callback')}?" + urlencode(
        {"state": state_issue()}
    )
    common = {
        "component_appid": settings.WECHAT_COMPONENT_APPID,
        "pre_auth_code": pre_auth_code,
        "redirect_uri": redirect_uri,
        **choice.query(),
    }
    pc = f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage?{urlencode(common)}"
    mobile_query = {"action": "bindcomponent", "no_scan": "1", **common}
    mobile = f"{settings.WECHAT_OPEN_BASE}/wxaopen/safe/bindcomponent?{urlencode(mobile_query)}#wechat_redirect"
    return AuthorizationLinks(pc_url=pc, mobile_url=mobile, redirect_uri=redirect_uri)


def state_issue() -> str:
    return signing.dumps({"n": secrets.token_urlsafe(16)}, salt=STATE_SALT, compress=False)


def state_consume(*, state: str) -> None:
    """Accept a ``state`` once; raises BadState otherwise. Nothing is called before this holds."""
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
    try:
        with transaction.atomic():
            AuthorizationStateUse.objects.create(nonce=nonce)
    except IntegrityError:
        raise BadState("this authorization link was used already: start again") from None
