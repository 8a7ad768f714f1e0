"""The link staff send a merchant so that it authorizes the platform.

It is the platform's own ``/wechat/authorize/`` page, never a WeChat URL: WeChat serves its
authorization pages only to a browser arriving from the platform's registered domain, a pre-auth
code lives 10 minutes, and the callback accepts only the one-time ``state`` that page issues. The
page makes all three fresh each time it is opened and offers the PC (QR code) and the mobile
(bindcomponent, inside WeChat) links.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

AUTH_TYPES = (
    (1, _("Official Accounts only")),
    (2, _("Mini Programs only")),
    (3, _("Official Accounts and Mini Programs")),
)
APPID = re.compile(r"wx[0-9A-Za-z]{16}")


class BadChoice(ValueError):
    pass


def account_choice(*, auth_type: str | None, biz_appid: str | None) -> dict[str, str]:
    """``auth_type`` or one account's ``biz_appid`` (WeChat takes one or the other, never both)."""
    auth_type, biz_appid = (auth_type or "").strip(), (biz_appid or "").strip()
    if biz_appid:
        if not APPID.fullmatch(biz_appid):
            raise BadChoice(gettext("biz_appid must be an appid: wx followed by 16 letters or digits"))
        return {"biz_appid": biz_appid}
    if auth_type and (not auth_type.isdigit() or int(auth_type) not in dict(AUTH_TYPES)):
        raise BadChoice(gettext("auth_type must be 1, 2 or 3"))
    return {"auth_type": auth_type or str(settings.WECHAT_AUTH_TYPE)}


def platform_page_url(*, request: HttpRequest, choice: dict[str, str]) -> str:
    base = (settings.PUBLIC_BASE_URL or f"{request.scheme}://{request.get_host()}").rstrip("/")
    return f"{base}{reverse('wechat-authorize')}?{urlencode(choice)}"
