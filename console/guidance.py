"""What a failure means in words, whose problem it is, and what a person should do about it.

One table for the console's every view of a failure (the dashboard, a deletion's page, the retry
confirmation): keyed by the deletion reason (``kfaccounts.models.DeletionReason``) or the reason a
WeChat error class carries (``wechat.errors``; the audit log's ``outcome`` of a ``wechat.*`` call),
which share their names where they mean the same thing.

``side`` separates a merchant's own mistakes (a typo in a kf account, customer service not enabled,
a permission set not granted), which only the merchant can fix, from problems of the platform or
WeChat, which the operations team fixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

MERCHANT = "merchant"
PLATFORM = "platform"
NOBODY = "nobody"  # it resolves by itself (a retry, a quota reset) or is no failure at all


@dataclass(frozen=True)
class Guidance:
    meaning: Any
    action: Any
    side: str


ENABLE_CUSTOMER_SERVICE = _(
    "Ask the merchant to enable the new customer service (新版客服) in the WeChat admin (mp.weixin.qq.com), "
    "or to wait a few minutes if it was just enabled; then retry the deletion."
)

GUIDANCE: dict[str, Guidance] = {
    "kf_not_enabled": Guidance(
        _("the merchant has not enabled the new customer service on WeChat (65400)"), ENABLE_CUSTOMER_SERVICE, MERCHANT
    ),
    "invalid_kf_account": Guidance(
        _("no such customer-service account on WeChat (65401): a mistyped name, or deleted elsewhere"),
        _("Check the name with the merchant (Sync kf accounts shows what exists); retrying does not help."),
        MERCHANT,
    ),
    "invalid_input": Guidance(
        _("not a valid kf account name"),
        _("The merchant must send the full name, such as kf1@wechatid."),
        MERCHANT,
    ),
    "merchant_blocked": Guidance(
        _("this merchant is blocked (see its alert)"),
        _("Read the merchant's alert: it says what the merchant must change."),
        MERCHANT,
    ),
    "permission_denied": Guidance(
        _("the merchant did not grant the customer-service permission set (48001/61007)"),
        _(
            "Send the merchant the authorization link (its page, 'authorize again') to grant permission set "
            "1, 6, 19, 100 or 101; then retry."
        ),
        MERCHANT,
    ),
    "authorization_revoked": Guidance(
        _("the merchant revoked the platform's authorization (61003/61023)"),
        _("Only the merchant can authorize again: send it the authorization link."),
        MERCHANT,
    ),
    "not_eligible": Guidance(
        _("the merchant may not use the deletion interface (certification, account type or permissions)"),
        _("Its page says why; the merchant fixes it on WeChat, then its deletions can be asked for again."),
        MERCHANT,
    ),
    "quota_exhausted": Guidance(
        _("the merchant's daily quota for this interface is spent (45009)"),
        _("Nothing: its deletions wait for the reset at midnight Beijing time and then continue."),
        NOBODY,
    ),
    "quota_exceeded": Guidance(
        _("a daily quota is spent (45009)"),
        _("Nothing: the work waits for the reset at midnight Beijing time."),
        NOBODY,
    ),
    "upstream_unavailable": Guidance(
        _("WeChat did not answer usefully (busy, 5xx, timeout) and the retries ran out"),
        _("Check the platform's network and WeChat's status, then retry the failed deletions."),
        PLATFORM,
    ),
    "wechat_error": Guidance(
        _("WeChat refused with an errcode the platform has no rule for"),
        _("Read the errcode and errmsg on the deletion's page, and look them up in WeChat's documentation."),
        PLATFORM,
    ),
    "platform_held": Guidance(
        _("held while the platform itself is blocked (61004: caller IP not whitelisted)"),
        _("Fix the open platform alert; held deletions then continue by themselves."),
        PLATFORM,
    ),
    "ip_not_whitelisted": Guidance(
        _("the platform's server IP is not on its whitelist (61004)"),
        _("Add this server's IP to the whitelist in the WeChat Open Platform console, then mark the alert fixed."),
        PLATFORM,
    ),
    "token_invalid": Guidance(
        _("an access token was refused (40001/42001); the platform refreshes it and tries once more"),
        _("Nothing, unless it keeps happening: then check the merchant's token health on its page."),
        NOBODY,
    ),
    "component_ticket_invalid": Guidance(
        _("the component_verify_ticket was refused (61005/61006); the platform asks WeChat for a new push"),
        _("Nothing, unless the dashboard says no ticket has arrived for 20 minutes."),
        NOBODY,
    ),
    "authorization_code_invalid": Guidance(
        _("an authorization code was used twice or expired (61009/61010)"),
        _("Nothing: the merchant opens the authorization link again if its authorization did not complete."),
        NOBODY,
    ),
    "api_banned": Guidance(
        _("WeChat banned the deletion interface for this account (48004)"),
        _("The merchant must settle it with WeChat (its admin shows why), then ask for the deletions again."),
        MERCHANT,
    ),
    "account_restricted": Guidance(
        _("WeChat restricted this account (50002)"),
        _("The merchant must lift the restriction on WeChat, then ask for the deletions again."),
        MERCHANT,
    ),
    "merchant_held": Guidance(
        _("held while this merchant is blocked (its IP whitelist, or a refused refresh token)"),
        _("Read the merchant's alert: it says what the merchant must change; held deletions then continue."),
        MERCHANT,
    ),
    "merchant_ip_not_whitelisted": Guidance(
        _("the merchant's own IP whitelist does not list the platform's servers (40164/40090)"),
        _("Ask the merchant to add the platform's server IPs to its account's IP whitelist (or remove it)."),
        MERCHANT,
    ),
    "refresh_token_invalid": Guidance(
        _("WeChat refused the merchant's refresh token (61023)"),
        _("Send the merchant the authorization link if the nightly reconciliation does not recover it."),
        MERCHANT,
    ),
    "minute_quota": Guidance(
        _("WeChat's per-minute limit (45011); retried in the next minute"),
        _("Nothing: it continues by itself."),
        NOBODY,
    ),
    "minute_quota_exceeded": Guidance(
        _("WeChat's per-minute limit (45011); retried in the next minute"),
        _("Nothing: it continues by itself."),
        NOBODY,
    ),
    "platform_blocked": Guidance(
        _("the platform itself is blocked (see the platform alert)"),
        _("Fix what the platform alert says; held work then continues by itself."),
        PLATFORM,
    ),
    "no_verify_ticket": Guidance(
        _("no usable component_verify_ticket yet (WeChat pushes one every 10 minutes)"),
        _("Nothing, unless the dashboard says no ticket has arrived for 20 minutes."),
        NOBODY,
    ),
    "component_invalid": Guidance(
        _("the platform's appid or appsecret is wrong (61011/40125/41004)"),
        _("Check WECHAT_COMPONENT_APPID and WECHAT_COMPONENT_APPSECRET against the WeChat Open Platform console."),
        PLATFORM,
    ),
    "wrong_token_kind": Guidance(
        _("WeChat refused the kind of token sent (61014/61015/61024)"),
        _("A platform bug or a wrong WECHAT_API_BASE: report it with the errmsg and rid."),
        PLATFORM,
    ),
    "platform_quota_exceeded": Guidance(
        _("the platform's own daily quota is spent (45009)"),
        _("Wait for the reset at midnight Beijing time, or reset it in the WeChat Open Platform console."),
        PLATFORM,
    ),
    "retry_scheduled": Guidance(
        _("a passing error; a retry is scheduled"), _("Nothing: it is retried by itself."), NOBODY
    ),
    "already_gone": Guidance(
        _("already gone from WeChat (deleted by an earlier attempt whose answer was lost)"), "", NOBODY
    ),
}


def guidance(code: str | None) -> Guidance | None:
    return GUIDANCE.get(code or "")


def meaning(code: str | None) -> str:
    """The words for a reason code; an unknown code is shown as it is, never hidden."""
    found = guidance(code)
    return str(found.meaning) if found else (code or "—")


def failure_hint(code: str | None) -> str:
    """What a person should do about this failure, or "" when nothing is to be done."""
    found = guidance(code)
    return str(found.action) if found and found.side != NOBODY else ""
