"""WeChat errcodes, grouped by what the caller must do about them.

This module is the one place that decides what is transient (tasks retry on `Transient` and
nothing else), what needs a token refresh, and what is final. Codes are from
docs/wechat.md §3, §6, §9 and §11.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "AUTHORIZATION_CODE_ERRCODES",
    "COMPONENT_TICKET_ERRCODES",
    "INVALID_KF_ACCOUNT_ERRCODES",
    "IP_WHITELIST_ERRCODES",
    "KF_NOT_ENABLED_ERRCODES",
    "PERMISSION_ERRCODES",
    "QUOTA_ERRCODES",
    "REVOKED_ERRCODES",
    "TOKEN_ERRCODES",
    "TRANSIENT_ERRCODES",
    "AuthorizationCodeInvalid",
    "AuthorizationRevoked",
    "ComponentTicketInvalid",
    "InvalidKfAccount",
    "IpNotWhitelisted",
    "KfNotEnabled",
    "MalformedResponse",
    "NoVerifyTicket",
    "Permanent",
    "PermissionDenied",
    "QuotaExceeded",
    "TokenInvalid",
    "Transient",
    "WeChatError",
    "error_for",
    "parse_rid",
]

# 40001 invalid credential, 40014 invalid access_token, 42001 expired, 41001 missing.
TOKEN_ERRCODES: frozenset[int] = frozenset({40001, 40014, 42001, 41001})
# -1 system busy, 45011 per-minute quota: both say "try again later".
TRANSIENT_ERRCODES: frozenset[int] = frozenset({-1, 45011})
# 45009 daily quota; calls on an authorizer's behalf spend that authorizer's quota (docs/wechat.md §12).
QUOTA_ERRCODES: frozenset[int] = frozenset({45009})
# 48001 the account lacks the API; 61007 the set was not granted to this platform.
PERMISSION_ERRCODES: frozenset[int] = frozenset({48001, 61007})
# 61003 not authorized (revoked); 61023 refresh token invalid (revoked or re-authorized).
REVOKED_ERRCODES: frozenset[int] = frozenset({61003, 61023})
KF_NOT_ENABLED_ERRCODES: frozenset[int] = frozenset({65400})
INVALID_KF_ACCOUNT_ERRCODES: frozenset[int] = frozenset({65401})
# 61005 ticket expired, 61006 ticket invalid: transient: ask WeChat to push again
# (api_start_push_ticket) and retry once the next ticket has arrived (docs/wechat.md §2, §3).
COMPONENT_TICKET_ERRCODES: frozenset[int] = frozenset({61005, 61006})
# 61004 the caller's IP is not on the platform's whitelist: every component and authorizer call
# fails the same way until an operator fixes the whitelist (docs/wechat.md §1).
IP_WHITELIST_ERRCODES: frozenset[int] = frozenset({61004})
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


class NoVerifyTicket(Transient):
    """No usable component_verify_ticket (none pushed yet, or the newest is older than 12 hours).

    Raised before any call: nothing reached WeChat. Retry once WeChat has pushed a ticket (it does
    every 10 minutes); errcode is None.
    """


class QuotaExceeded(WeChatError):
    """Daily quota spent: pause calls for this authorizer until the quota resets."""

    reason = "quota_exceeded"


class PermissionDenied(WeChatError):
    """Re-read the authorizer's permissions; do not retry."""

    reason = "permission_denied"


class AuthorizationRevoked(WeChatError):
    """Mark the authorizer revoked and wait for a new `authorized` event."""

    reason = "authorization_revoked"


class Permanent(WeChatError):
    """Retrying the same request will not help."""

    reason = "wechat_error"


class KfNotEnabled(Permanent):
    reason = "kf_not_enabled"


class InvalidKfAccount(Permanent):
    reason = "invalid_kf_account"


class ComponentTicketInvalid(Transient):
    """The verify ticket WeChat pushed has expired or is invalid: request a new push, retry later."""

    reason = "component_ticket_invalid"


class IpNotWhitelisted(WeChatError):
    """The platform itself is refused (61004): raise one platform alert and hold work, fail nothing."""

    reason = "ip_not_whitelisted"


class AuthorizationCodeInvalid(Permanent):
    """61009/61010: the authorization code was used already or has expired."""

    reason = "authorization_code_invalid"


_CLASS_BY_ERRCODE: dict[int, type[WeChatError]] = {
    **{c: TokenInvalid for c in TOKEN_ERRCODES},
    **{c: Transient for c in TRANSIENT_ERRCODES},
    **{c: QuotaExceeded for c in QUOTA_ERRCODES},
    **{c: PermissionDenied for c in PERMISSION_ERRCODES},
    **{c: AuthorizationRevoked for c in REVOKED_ERRCODES},
    **{c: KfNotEnabled for c in KF_NOT_ENABLED_ERRCODES},
    **{c: InvalidKfAccount for c in INVALID_KF_ACCOUNT_ERRCODES},
    **{c: ComponentTicketInvalid for c in COMPONENT_TICKET_ERRCODES},
    **{c: IpNotWhitelisted for c in IP_WHITELIST_ERRCODES},
    **{c: AuthorizationCodeInvalid for c in AUTHORIZATION_CODE_ERRCODES},
}

# "System busy" does not say whether the work was done; every other errcode is a definitive answer.
_OUTCOME_UNKNOWN_ERRCODES: frozenset[int] = frozenset({-1})


def error_for(errcode: int, errmsg: str, *, path: str | None = None, http_status: int | None = None) -> WeChatError:
    if errcode == 0:
        raise ValueError("errcode 0 is success, not an error")
    cls = _CLASS_BY_ERRCODE.get(errcode, Permanent)
    return cls(
        errcode,
        errmsg,
        outcome_unknown=errcode in _OUTCOME_UNKNOWN_ERRCODES,
        path=path,
        http_status=http_status,
    )
