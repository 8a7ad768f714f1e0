"""WeChat-facing HTTP: each platform's events URL and its authorization redirect and return.

Every view serves one platform: the one named in the path (``/wechat/platforms/<component_appid>/…``)
or, on the paths that predate platforms (``/wechat/component/events/``, ``/wechat/authorize/``), the
default one. A push is verified and decrypted with that platform's token and AES keys and must name
its AppId; anything signed, encrypted or addressed for another platform is refused and changes nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from audit.services import Actor
from authorizers import authorization, authorize_throttle, flow_errors, platforms, services
from authorizers.client import message_crypto
from authorizers.models import Platform
from authorizers.policy import eligibility
from wechat.crypto import CryptoError
from wechat.errors import NoVerifyTicket, WeChatError
from wechat.xmlparse import XMLError, parse_xml

log = logging.getLogger(__name__)


TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


def _refuse(status: int, reason: str) -> HttpResponse:
    log.warning("component event refused: %s", reason)
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


def _served(component_appid: str | None) -> Platform:
    """The platform a URL serves: the one named, active; the default one on the older paths."""
    if component_appid is None:
        return platforms.platform_default()
    return platforms.platform_get(component_appid)


@csrf_exempt
@require_POST
def component_events(request: HttpRequest, component_appid: str | None = None) -> HttpResponse:
    """A platform's 授权事件接收URL: verify, decrypt, record, answer exactly ``success``."""
    try:
        platform = _served(component_appid)
    except (platforms.UnknownPlatform, platforms.PlatformRetired) as exc:
        return _refuse(exc.status, exc.message)
    appid = platform.component_appid
    limit = settings.WECHAT_EVENT_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refuse(400, "bad Content-Length")
    if declared > limit:
        return _refuse(413, "body too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refuse(413, "body too large")

    params = request.GET
    msg_signature, timestamp, nonce = (params.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
    if not (msg_signature and timestamp and nonce):
        return _refuse(400, "msg_signature, timestamp and nonce are required")
    # Digits only, and few of them: int() of 400 nines works, but comparing it with a float overflows.
    if not TIMESTAMP_RE.fullmatch(timestamp):
        return _refuse(400, "timestamp must be a unix time")
    skew = abs(time.time() - int(timestamp))
    if skew > settings.WECHAT_EVENT_MAX_SKEW:
        return _refuse(403, "timestamp outside the accepted window")

    try:
        envelope = parse_xml(body, max_bytes=limit)
    except XMLError as exc:
        log.info("component event body unreadable: %s", exc)  # the parser's words are not echoed
        return _refuse(400, "malformed XML")
    encrypt = envelope.get("Encrypt", "")
    if not encrypt:
        return _refuse(400, "Encrypt is missing")
    envelope_appid = envelope.get("AppId")
    if envelope_appid is not None and envelope_appid != appid:
        return _refuse(403, "AppId is not this platform's")
    try:
        plaintext = message_crypto(platform).decrypt_message(
            encrypt=encrypt, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce
        )
    except CryptoError as exc:
        return _refuse(403 if exc.code in ("bad_signature", "bad_appid") else 400, f"rejected: {exc.code}")
    try:
        fields = parse_xml(plaintext, max_bytes=limit)
    except XMLError as exc:
        log.info("component event plaintext unreadable: %s", exc)
        return _refuse(400, "malformed decrypted XML")
    if fields.get("AppId", appid) != appid:
        return _refuse(403, "AppId is not this platform's")
    try:
        services.component_event_receive(fields=fields, platform=platform)
    except services.BadEvent as exc:
        return _refuse(exc.status, f"bad event: {exc.message}")
    return HttpResponse("success", content_type="text/plain")


# --- the authorization flow --------------------------------------------------------------------

# The page must send its origin as Referer when the merchant follows its link to WeChat (docs/wechat.md §4):
# Django's default same-origin policy sends nothing cross-origin.
AUTHORIZE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# How long the browser callback waits for the push's exchange of the same code to finish.
CALLBACK_WAIT_SECONDS = 10.0


def _problem(request: HttpRequest, exc: flow_errors.FlowError) -> HttpResponse:
    """The problem page: the same code, message, status and retry-after the API's envelope carries."""
    response = render(
        request, "authorizers/problem.html", {"title": exc.title, "message": exc.message}, status=exc.status
    )
    response["Cache-Control"] = "no-store"
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _shows_problems(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A flow page that raises a FlowError answers the problem page instead."""

    @wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except flow_errors.FlowError as exc:
            return _problem(request, exc)

    return page


def _wechat_problem(exc: WeChatError, *, exchanging: bool) -> flow_errors.FlowError:
    """What a failed WeChat call means for the merchant's page (WeChat's errors know nothing of HTTP)."""
    if isinstance(exc, services.ExchangeInProgress):
        return flow_errors.ExchangePending(
            "WeChat is still confirming this authorization; reload this page in a moment."
        )
    if isinstance(exc, NoVerifyTicket):
        return flow_errors.NotReady(f"{exc}. WeChat pushes one every 10 minutes.")
    message = f"errcode {exc.errcode}: {exc.errmsg}"
    if not exchanging:
        return flow_errors.WeChatDidNotAnswer(message)
    return flow_errors.AuthorizationFailed(message, status=502 if exc.errcode is None or exc.errcode == -1 else 400)


def _throttle(request: HttpRequest) -> None:
    retry_after = authorize_throttle.hit(request)
    if retry_after is not None:
        raise flow_errors.Throttled(retry_after)


def _request_base(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _flow_platform(component_appid: str | None) -> Platform:
    try:
        return _served(component_appid)
    except (platforms.UnknownPlatform, platforms.PlatformRetired) as exc:
        raise flow_errors.UnknownPlatform(exc.message, status=exc.status) from None


@require_GET
@_shows_problems
def authorize(request: HttpRequest, component_appid: str | None = None) -> HttpResponse:
    """The platform's authorization page: a fresh pre-auth code and links to WeChat's pages."""
    _throttle(request)
    platform = _flow_platform(component_appid)
    choice = authorization.account_choice_parse(
        auth_type=request.GET.get("auth_type"), biz_appid=request.GET.get("biz_appid"), sets=request.GET.get("sets")
    )
    try:
        pre_auth_code = services.preauth_code_create(platform=platform)
    except WeChatError as exc:
        raise _wechat_problem(exc, exchanging=False) from exc
    links = authorization.authorization_links(
        base_url=authorization.public_base_url(_request_base(request)),
        pre_auth_code=pre_auth_code,
        choice=choice,
        platform=platform,
    )
    response = render(request, "authorizers/authorize.html", {"links": links, "choice": choice, "platform": platform})
    response["Referrer-Policy"] = AUTHORIZE_REFERRER_POLICY
    response["Cache-Control"] = "no-store"  # a pre-auth code is single-use
    return response


@require_GET
@_shows_problems
def authorize_callback(
    request: HttpRequest, state: str | None = None, component_appid: str | None = None
) -> HttpResponse:
    """WeChat sends the merchant back here: ``/callback/<state>/?auth_code=…&expires_in=…``.

    The older form, ``/callback/?state=…&auth_code=…``, is still accepted for links issued before the
    state moved into the path.
    """
    _throttle(request)
    platform = _flow_platform(component_appid)
    code = request.GET.get("auth_code", "").strip()
    if not code or len(code) > 512:
        raise flow_errors.MissingCode("auth_code is required")
    # The state names the platform it was issued for: a link of another platform is refused here.
    authorization.state_consume(state=state or request.GET.get("state", ""), platform=platform)
    try:
        authorizer = services.authorizer_authorize(
            authorization_code=code,
            actor=Actor.system("authorization callback"),
            via_callback=True,
            wait=CALLBACK_WAIT_SECONDS,
            platform=platform,
        )
    except WeChatError as exc:
        raise _wechat_problem(exc, exchanging=True) from exc
    response = render(
        request, "authorizers/authorized.html", {"authorizer": authorizer, "eligibility": eligibility(authorizer)}
    )
    # The URL holds the code: no cache, and no Referer carrying it to anything the page loads.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def authorize_link(request: HttpRequest) -> HttpResponse:
    """The old address of the staff's link maker: the console's page is the one page now."""
    target = reverse("admin:authorizers_authorizer_authorization_link")
    query = request.GET.urlencode()
    return HttpResponsePermanentRedirect(f"{target}?{query}" if query else target)
