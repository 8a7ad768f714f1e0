"""WeChat-facing HTTP: the component events URL and the authorization redirect and return."""

from __future__ import annotations

import logging
import re
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from audit.services import Actor
from authorizers import authorization, authorize_throttle, services
from authorizers.client import message_crypto
from authorizers.policy import eligibility
from wechat.crypto import CryptoError
from wechat.errors import NoVerifyTicket, WeChatError
from wechat.xmlparse import XMLError, parse_xml

log = logging.getLogger(__name__)


TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


def _refuse(status: int, reason: str) -> HttpResponse:
    log.warning("component event refused: %s", reason)
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def component_events(request: HttpRequest) -> HttpResponse:
    """WeChat's 授权事件接收URL: verify, decrypt, record, answer exactly ``success``."""
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
    if envelope_appid is not None and envelope_appid != settings.WECHAT_COMPONENT_APPID:
        return _refuse(403, "AppId is not this platform's")
    try:
        plaintext = message_crypto().decrypt_message(
            encrypt=encrypt, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce
        )
    except CryptoError as exc:
        return _refuse(403 if exc.code in ("bad_signature", "bad_appid") else 400, f"rejected: {exc.code}")
    try:
        fields = parse_xml(plaintext, max_bytes=limit)
    except XMLError as exc:
        log.info("component event plaintext unreadable: %s", exc)
        return _refuse(400, "malformed decrypted XML")
    if fields.get("AppId", settings.WECHAT_COMPONENT_APPID) != settings.WECHAT_COMPONENT_APPID:
        return _refuse(403, "AppId is not this platform's")
    try:
        services.component_event_receive(fields=fields)
    except services.BadEvent as exc:
        return _refuse(400, f"bad event: {exc}")
    return HttpResponse("success", content_type="text/plain")


# --- the authorization flow --------------------------------------------------------------------

# The page must send its origin as Referer when the merchant follows its link to WeChat (docs/wechat.md §4):
# Django's default same-origin policy sends nothing cross-origin.
AUTHORIZE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# How long the browser callback waits for the push's exchange of the same code to finish.
CALLBACK_WAIT_SECONDS = 10.0


def _problem(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    response = render(request, "authorizers/problem.html", {"title": title, "message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _throttled(request: HttpRequest) -> HttpResponse | None:
    retry_after = authorize_throttle.hit(request)
    if retry_after is None:
        return None
    response = _problem(request, "Too many requests", "Please wait a moment and try again.", 429)
    response["Retry-After"] = str(retry_after)
    return response


def _request_base(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


@require_GET
def authorize(request: HttpRequest) -> HttpResponse:
    """The platform's authorization page: a fresh pre-auth code and links to WeChat's pages."""
    refused = _throttled(request)
    if refused is not None:
        return refused
    try:
        choice = authorization.account_choice_parse(
            auth_type=request.GET.get("auth_type"), biz_appid=request.GET.get("biz_appid"), sets=request.GET.get("sets")
        )
    except authorization.BadChoice as exc:
        return _problem(request, "Invalid link", str(exc), 400)
    try:
        pre_auth_code = services.preauth_code_create()
    except NoVerifyTicket as exc:
        return _problem(request, "Not ready yet", f"{exc}. WeChat pushes one every 10 minutes.", 503)
    except WeChatError as exc:
        return _problem(request, "WeChat did not answer", f"errcode {exc.errcode}: {exc.errmsg}", 502)
    links = authorization.authorization_links(
        base_url=authorization.public_base_url(_request_base(request)), pre_auth_code=pre_auth_code, choice=choice
    )
    response = render(request, "authorizers/authorize.html", {"links": links, "choice": choice})
    response["Referrer-Policy"] = AUTHORIZE_REFERRER_POLICY
    response["Cache-Control"] = "no-store"  # a pre-auth code is single-use
    return response


@require_GET
def authorize_callback(request: HttpRequest, state: str | None = None) -> HttpResponse:
    """WeChat sends the merchant back here: ``/callback/<state>/?auth_code=…&expires_in=…``.

    The older form, ``/callback/?state=…&auth_code=…``, is still accepted for links issued before the
    state moved into the path.
    """
    refused = _throttled(request)
    if refused is not None:
        return refused
    code = request.GET.get("auth_code", "").strip()
    if not code or len(code) > 512:
        return _problem(request, "Missing authorization code", "auth_code is required", 400)
    try:
        authorization.state_consume(state=state or request.GET.get("state", ""))
    except authorization.BadState as exc:
        return _problem(request, "Authorization refused", str(exc), 400)
    try:
        authorizer = services.authorizer_authorize(
            authorization_code=code,
            actor=Actor.system("authorization callback"),
            via_callback=True,
            wait=CALLBACK_WAIT_SECONDS,
        )
    except services.CodeReplayed:
        return _problem(request, "Authorization refused", "this authorization code was used already", 400)
    except services.ExchangeInProgress:
        return _problem(
            request, "Almost done", "WeChat is still confirming this authorization; reload this page in a moment.", 202
        )
    except NoVerifyTicket as exc:
        return _problem(request, "Not ready yet", str(exc), 503)
    except WeChatError as exc:
        status = 502 if exc.errcode is None or exc.errcode == -1 else 400
        return _problem(request, "Authorization failed", f"errcode {exc.errcode}: {exc.errmsg}", status)
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
