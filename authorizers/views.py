"""WeChat-facing HTTP: the component events URL and the authorization redirect and return."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from audit.services import Actor
from authorizers import services
from authorizers.client import message_crypto
from authorizers.policy import eligibility
from wechat.crypto import CryptoError
from wechat.errors import NoVerifyTicket, WeChatError
from wechat.xmlparse import XMLError, parse_xml

log = logging.getLogger(__name__)


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
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        return _refuse(400, "timestamp must be a unix time")
    if skew > settings.WECHAT_EVENT_MAX_SKEW:
        return _refuse(403, "timestamp outside the accepted window")

    try:
        envelope = parse_xml(body, max_bytes=limit)
    except XMLError as exc:
        return _refuse(400, f"malformed XML: {exc}")
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
        return _refuse(400, f"malformed decrypted XML: {exc}")
    if fields.get("AppId", settings.WECHAT_COMPONENT_APPID) != settings.WECHAT_COMPONENT_APPID:
        return _refuse(403, "AppId is not this platform's")
    try:
        services.component_event_receive(fields=fields)
    except services.BadEvent as exc:
        return _refuse(400, f"bad event: {exc}")
    return HttpResponse("success", content_type="text/plain")


def _callback_url(request: HttpRequest) -> str:
    path = reverse("wechat-authorize-callback")
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + path
    return request.build_absolute_uri(path)


@require_GET
def authorize(request: HttpRequest) -> HttpResponse:
    """Start an authorization: a fresh pre-auth code and a redirect to WeChat's page."""
    try:
        pre_auth_code = services.preauth_code_create()
    except NoVerifyTicket as exc:
        return render(
            request,
            "authorizers/problem.html",
            {"title": "Not ready yet", "message": f"{exc}. WeChat pushes one every 10 minutes."},
            status=503,
        )
    except WeChatError as exc:
        return render(
            request,
            "authorizers/problem.html",
            {"title": "WeChat did not answer", "message": f"errcode {exc.errcode}: {exc.errmsg}"},
            status=502,
        )
    query = {
        "component_appid": settings.WECHAT_COMPONENT_APPID,
        "pre_auth_code": pre_auth_code,
        "redirect_uri": _callback_url(request),
        "auth_type": str(settings.WECHAT_AUTH_TYPE),
    }
    return HttpResponseRedirect(f"{settings.WECHAT_MP_BASE}/cgi-bin/componentloginpage?{urlencode(query)}")


@require_GET
def authorize_callback(request: HttpRequest) -> HttpResponse:
    """WeChat sends the merchant back here with ?auth_code=…&expires_in=…"""
    code = request.GET.get("auth_code", "").strip()
    if not code or len(code) > 512:
        return render(
            request,
            "authorizers/problem.html",
            {"title": "Missing authorization code", "message": "auth_code is required"},
            status=400,
        )
    try:
        authorizer = services.authorizer_authorize(
            authorization_code=code, actor=Actor.system("authorization callback")
        )
    except NoVerifyTicket as exc:
        return render(request, "authorizers/problem.html", {"title": "Not ready yet", "message": str(exc)}, status=503)
    except WeChatError as exc:
        status = 502 if exc.errcode is None or exc.errcode == -1 else 400
        return render(
            request,
            "authorizers/problem.html",
            {"title": "Authorization failed", "message": f"errcode {exc.errcode}: {exc.errmsg}"},
            status=status,
        )
    return render(
        request, "authorizers/authorized.html", {"authorizer": authorizer, "eligibility": eligibility(authorizer)}
    )
