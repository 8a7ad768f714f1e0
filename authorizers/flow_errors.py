"""Why a page of the authorization flow cannot be shown: DomainErrors with the page's title.

The merchant's browser, not an API client, reads these: ``authorizers/views.py`` renders each as the
problem page (title, message, status, ``Retry-After``), from the same fields the API's exception
handler reads. What a failed WeChat call means for the page is decided there, in one function.
"""

from __future__ import annotations

from typing import ClassVar

from errorkit import DomainError


class FlowError(DomainError):
    code = "authorization_refused"
    title: ClassVar[str] = "Authorization refused"


class Throttled(FlowError):
    code = "throttled"
    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Please wait a moment and try again.", retry_after=retry_after)


class BadChoice(FlowError, ValueError):
    """auth_type / biz_appid / sets that WeChat would not accept."""

    code = "invalid_link"
    title = "Invalid link"


class BadState(FlowError, ValueError):
    """A callback whose ``state`` is missing, forged, expired or used already."""

    code = "invalid_state"


class MissingCode(FlowError):
    code = "missing_code"
    title = "Missing authorization code"


class CodeReplayed(FlowError, ValueError):
    """The browser callback presented an authorization code it had presented before."""

    code = "code_replayed"


class NotReady(FlowError):
    """No verify ticket yet: nothing can be asked of WeChat until it pushes one."""

    code = "not_ready"
    status = 503
    title = "Not ready yet"


class ExchangePending(FlowError):
    """The push is exchanging the same code: the merchant reloads the page in a moment."""

    code = "exchange_in_progress"
    status = 202
    title = "Almost done"


class UnknownPlatform(FlowError):
    """A platform URL naming a component appid this deployment does not serve (or no longer does)."""

    code = "unknown_platform"
    status = 404
    title = "Unknown platform"


class WeChatDidNotAnswer(FlowError):
    code = "wechat_unavailable"
    status = 502
    title = "WeChat did not answer"


class AuthorizationFailed(FlowError):
    code = "authorization_failed"
    title = "Authorization failed"
