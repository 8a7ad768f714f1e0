"""WeChat errcodes, grouped by what the caller must do about them.

This module is the one place that decides what is transient (tasks retry on `Transient` and
nothing else), what needs a token refresh, and what is final. Codes are from
docs/wechat.md §3, §6, §9 and §11.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "ACCOUNT_RESTRICTED_ERRCODES",
    "API_BANNED_ERRCODES",
    "AUTHORIZATION_CODE_ERRCODES",
    "COMPONENT_INVALID_ERRCODES",
    "COMPONENT_PATH_PREFIX",
    "COMPONENT_TICKET_ERRCODES",
    "INVALID_KF_ACCOUNT_ERRCODES",
    "IP_WHITELIST_ERRCODES",
    "KF_NOT_ENABLED_ERRCODES",
    "MERCHANT_IP_WHITELIST_ERRCODES",
    "MINUTE_QUOTA_ERRCODES",
    "PERMISSION_ERRCODES",
    "QUOTA_ERRCODES",
    "REFRESH_TOKEN_ERRCODES",
    "REVOKED_ERRCODES",
    "TOKEN_ERRCODES",
    "TRANSIENT_ERRCODES",
    "WRONG_TOKEN_KIND_ERRCODES",
    "AccountRestricted",
    "ApiBanned",
    "AuthorizationCodeInvalid",
    "AuthorizationRevoked",
    "ComponentInvalid",
    "ComponentTicketInvalid",
    "InvalidKfAccount",
    "IpNotWhitelisted",
    "KfNotEnabled",
    "MalformedResponse",
    "MerchantBlocked",
    "MerchantIpNotWhitelisted",
    "MinuteQuotaExceeded",
    "NoVerifyTicket",
    "Permanent",
    "PermissionNotGranted",
    "PlatformBlocked",
    "PlatformQuotaExceeded",
    "QuotaExceeded",
    "RefreshTokenInvalid",
    "TokenInvalid",
    "Transient",
    "WeChatError",
    "WrongTokenKind",
    "error_for",
    "parse_rid",
]

# Calls under this prefix are the platform's own (component token, pre-auth codes, refreshes): a
# quota answer from one of them is the platform's quota, not a merchant's (docs/wechat.md §12).
COMPONENT_PATH_PREFIX = "/cgi-bin/component/"

# 40001 invalid credential, 40014 invalid access_token, 42001 expired, 41001 missing.
TOKEN_ERRCODES: frozenset[int] = frozenset({40001, 40014, 42001, 41001})
# -1 system busy: "try again later".
TRANSIENT_ERRCODES: frozenset[int] = frozenset({-1})
# 45011 the per-minute limit: "retry next minute" — in the next wall-clock minute, not within this one.
MINUTE_QUOTA_ERRCODES: frozenset[int] = frozenset({45011})
# 45009 daily quota; calls on an authorizer's behalf spend that authorizer's quota, calls under
# /cgi-bin/component/ the platform's own (docs/wechat.md §12).
QUOTA_ERRCODES: frozenset[int] = frozenset({45009})
# 48001 the account lacks the API; 61007 the set was not granted to this platform.
PERMISSION_ERRCODES: frozenset[int] = frozenset({48001, 61007})
# 61003 not authorized: the merchant revoked. The only errcode that is a revocation (docs/wechat.md §6).
REVOKED_ERRCODES: frozenset[int] = frozenset({61003})
# 61023 the refresh token we hold is not the current one (rotated, re-authorized, events URL changed):
# read the current one from api_get_authorizer_info / api_get_authorizer_list and retry once.
REFRESH_TOKEN_ERRCODES: frozenset[int] = frozenset({61023})
KF_NOT_ENABLED_ERRCODES: frozenset[int] = frozenset({65400})
INVALID_KF_ACCOUNT_ERRCODES: frozenset[int] = frozenset({65401})
# 61005 ticket expired, 61006 ticket invalid: ask WeChat to push again (api_start_push_ticket) and
# hold work until the next ticket has arrived, up to 10 minutes (docs/wechat.md §2, §3).
COMPONENT_TICKET_ERRCODES: frozenset[int] = frozenset({61005, 61006})
# 61004 the caller's IP is not on the platform's whitelist: every component and authorizer call
# fails the same way until an operator fixes the whitelist (docs/wechat.md §1).
IP_WHITELIST_ERRCODES: frozenset[int] = frozenset({61004})
# 61011 invalid component, 40125 invalid appsecret, 41004 appsecret missing: the platform's own
# credentials are wrong; nothing works until an operator fixes the settings.
COMPONENT_INVALID_ERRCODES: frozenset[int] = frozenset({61011, 40125, 41004})
# 61014 / 61015 / 61024: a token of the wrong kind for the API (WxJava WxOpenErrorMsgEnum).
WRONG_TOKEN_KIND_ERRCODES: frozenset[int] = frozenset({61014, 61015, 61024})
# 40164 / 40090: the caller IP is not on an IP whitelist, which can be the merchant's own Official
# Account whitelist: that merchant is blocked until it (or we) fix the list.
MERCHANT_IP_WHITELIST_ERRCODES: frozenset[int] = frozenset({40164, 40090})
# 48004: WeChat banned the API for this account; 50002: the account is restricted.
API_BANNED_ERRCODES: frozenset[int] = frozenset({48004})
ACCOUNT_RESTRICTED_ERRCODES: frozenset[int] = frozenset({50002})
# 61009 code invalid (or already used), 61010 code expired: an authorization code is honoured once.
AUTHORIZATION_CODE_ERRCODES: frozenset[int] = frozenset({61009, 61010})

# WeChat appends a request id to errmsg: "invalid credential ... rid: 6643a1f2-1a2b3c4d-5e6f7a8b".
_RID_RE = re.compile(r"\brid:\s*([0-9A-Za-z][0-9A-Za-z\-]*)")


def parse_rid(errmsg: str) -> str | None:
    match = _RID_RE.search(errmsg or "")
    return match.group(1) if match else None


class WeChatError(Exception):
    """A call to WeChat that did not succeed.

    `reason` is the machine-readable code callers store (it matches the DeletionRequest reasons).
    `outcome_unknown` is True when WeChat may have acted on the request although we got no
    definitive answer (read timeout, 5xx, garbage body, -1): a later 65401 for a deletion then
    means "already gone". It is False when WeChat answered definitively or the request never
    left (connect errors).
    """

    reason: ClassVar[str] = "wechat_error"

    # Positional (errcode, errmsg) so that pickling and Celery's JSON exception round trip rebuild it.
    def __init__(
        self,
        errcode: int | None = None,
        errmsg: str = "",
        *,
        outcome_unknown: bool = False,
        http_status: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.rid = parse_rid(errmsg)
        self.outcome_unknown = outcome_unknown
        self.http_status = http_status
        self.path = path

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(self.path)
        if self.http_status is not None:
            parts.append(f"http {self.http_status}")
        if self.errcode is not None:
            parts.append(f"errcode {self.errcode}")
        if self.errmsg:
            parts.append(self.errmsg)
        return ": ".join(parts) or type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(errcode={self.errcode!r}, errmsg={self.errmsg!r})"


class TokenInvalid(WeChatError):
    """Refresh the token once (if the rejected one is still current) and retry once."""

    reason = "token_invalid"


class Transient(WeChatError):
    """Retry with backoff. errcode is None for transport failures and unreadable bodies."""

    reason = "upstream_unavailable"


class MalformedResponse(Transient):
    """HTTP 2xx, but the body is not the JSON object we expect (HTML, truncated, missing fields)."""


class MinuteQuotaExceeded(Transient):
    """45011, the per-minute limit: retry in the next wall-clock minute, and call this merchant slower.

    A Transient, so a task that only knows "retry later" still does the right thing; deletions treat
    it as a deferral that is not a failure (docs/wechat.md §11, §12).
    """

    reason = "minute_quota_exceeded"


class PlatformBlocked(Transient):
    """The platform itself cannot call WeChat: every merchant's call would fail the same way.

    Deletions are held behind one platform alert (``alert_code``) until the cause clears; tasks that
    know only ``Transient`` retry later, which is also right.
    """

    reason = "platform_blocked"
    alert_code: ClassVar[str] = "platform_blocked"


class NoVerifyTicket(PlatformBlocked):
    """No usable component_verify_ticket (none pushed yet, or the newest is older than 12 hours).

    Raised before any call: nothing reached WeChat. Work resumes once WeChat has pushed a ticket (it
    does every 10 minutes); errcode is None.
    """

    reason = "no_verify_ticket"
    alert_code = "verify_ticket_missing"


class ComponentTicketInvalid(PlatformBlocked):
    """61005/61006: the verify ticket WeChat pushed has expired or is invalid: request a new push, hold."""

    reason = "component_ticket_invalid"
    alert_code = "component_ticket_invalid"


class IpNotWhitelisted(PlatformBlocked):
    """61004: the platform's caller IP is not on its whitelist: one platform alert, hold work, fail nothing."""

    reason = "ip_not_whitelisted"
    alert_code = "ip_not_whitelisted"


class ComponentInvalid(PlatformBlocked):
    """61011 / 40125 / 41004: the platform's appid or appsecret is wrong (a settings problem)."""

    reason = "component_invalid"
    alert_code = "component_invalid"


class WrongTokenKind(PlatformBlocked):
    """61014 / 61015 / 61024: WeChat refused the kind of token sent (a platform bug or setting)."""

    reason = "wrong_token_kind"
    alert_code = "wrong_token_kind"


class PlatformQuotaExceeded(PlatformBlocked):
    """45009 from a /cgi-bin/component/ call: the platform's own daily quota is spent, not a merchant's."""

    reason = "platform_quota_exceeded"
    alert_code = "platform_quota_exceeded"


class QuotaExceeded(WeChatError):
    """45009 on a merchant's call: its daily quota is spent; pause calls for it until the quota resets."""

    reason = "quota_exceeded"


class PermissionNotGranted(WeChatError):
    """48001 / 61007: re-read the authorizer's permissions; do not retry.

    Not ``PermissionDenied``: that name is Django's, and the two were easy to catch by mistake.
    """

    reason = "permission_denied"


class AuthorizationRevoked(WeChatError):
    """61003: mark the authorizer revoked and wait for a new `authorized` event."""

    reason = "authorization_revoked"


class RefreshTokenInvalid(WeChatError):
    """61023: the refresh token we hold is not (or no longer) the current one. Not a revocation:
    read the current one from WeChat (api_get_authorizer_info / _list), store it, retry once."""

    reason = "refresh_token_invalid"


class MerchantBlocked(WeChatError):
    """An errcode that blocks one merchant's calls, not the platform's (docs/wechat.md §11).

    ``hold`` says whether its deletions wait (the merchant can fix it) or fail (WeChat's sanction).
    """

    reason = "merchant_blocked"
    hold: ClassVar[bool] = False


class MerchantIpNotWhitelisted(MerchantBlocked):
    """40164 / 40090: our IP is not on an IP whitelist, possibly the merchant's own account's."""

    reason = "merchant_ip_not_whitelisted"
    hold = True


class ApiBanned(MerchantBlocked):
    """48004: WeChat banned this API for the merchant's account."""

    reason = "api_banned"


class AccountRestricted(MerchantBlocked):
    """50002: the merchant's account is restricted by WeChat."""

    reason = "account_restricted"


class Permanent(WeChatError):
    """Retrying the same request will not help."""

    reason = "wechat_error"


class KfNotEnabled(Permanent):
    reason = "kf_not_enabled"


class InvalidKfAccount(Permanent):
    reason = "invalid_kf_account"


class AuthorizationCodeInvalid(Permanent):
    """61009/61010: the authorization code was used already or has expired."""

    reason = "authorization_code_invalid"


_CLASS_BY_ERRCODE: dict[int, type[WeChatError]] = {
    **{c: TokenInvalid for c in TOKEN_ERRCODES},
    **{c: Transient for c in TRANSIENT_ERRCODES},
    **{c: MinuteQuotaExceeded for c in MINUTE_QUOTA_ERRCODES},
    **{c: QuotaExceeded for c in QUOTA_ERRCODES},
    **{c: PermissionNotGranted for c in PERMISSION_ERRCODES},
    **{c: AuthorizationRevoked for c in REVOKED_ERRCODES},
    **{c: RefreshTokenInvalid for c in REFRESH_TOKEN_ERRCODES},
    **{c: KfNotEnabled for c in KF_NOT_ENABLED_ERRCODES},
    **{c: InvalidKfAccount for c in INVALID_KF_ACCOUNT_ERRCODES},
    **{c: ComponentTicketInvalid for c in COMPONENT_TICKET_ERRCODES},
    **{c: IpNotWhitelisted for c in IP_WHITELIST_ERRCODES},
    **{c: ComponentInvalid for c in COMPONENT_INVALID_ERRCODES},
    **{c: WrongTokenKind for c in WRONG_TOKEN_KIND_ERRCODES},
    **{c: MerchantIpNotWhitelisted for c in MERCHANT_IP_WHITELIST_ERRCODES},
    **{c: ApiBanned for c in API_BANNED_ERRCODES},
    **{c: AccountRestricted for c in ACCOUNT_RESTRICTED_ERRCODES},
    **{c: AuthorizationCodeInvalid for c in AUTHORIZATION_CODE_ERRCODES},
}

# "System busy" does not say whether the work was done; every other errcode is a definitive answer.
_OUTCOME_UNKNOWN_ERRCODES: frozenset[int] = frozenset({-1})


def error_for(errcode: int, errmsg: str, *, path: str | None = None, http_status: int | None = None) -> WeChatError:
    if errcode == 0:
        raise ValueError("errcode 0 is success, not an error")
    cls = _CLASS_BY_ERRCODE.get(errcode, Permanent)
    if cls is QuotaExceeded and path is not None and path.startswith(COMPONENT_PATH_PREFIX):
        cls = PlatformQuotaExceeded  # the platform's own quota (docs/wechat.md §12)
    return cls(
        errcode,
        errmsg,
        outcome_unknown=errcode in _OUTCOME_UNKNOWN_ERRCODES,
        path=path,
        http_status=http_status,
    )
