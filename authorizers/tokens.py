"""Component and authorizer access tokens: cached encrypted in their rows, refreshed single-flight.

Single flight across every process and thread: the fast path reads the row without a lock; a refresh
takes the row lock (``SELECT … FOR UPDATE`` on PostgreSQL, the IMMEDIATE write lock on SQLite), looks
again — someone may have refreshed while we waited — and only then calls WeChat. So however many
workers find the token stale at once, exactly one refresh reaches WeChat.

Everything here is per platform (issue 19): each platform has its own ticket and component token
(its ComponentCredential row), made with its own client; an authorizer's tokens are refreshed through
the platform it authorized. ``platform`` None is the default platform (the environment's).

Of the stored secrets, this module decrypts the verify ticket and the tokens; services.py the
authorization code of a push; rotation.py all of them, to re-encrypt (docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers import fieldcrypto
from authorizers.alerts import platform_call_succeeded, platform_error_seen, platform_recheck_claim
from authorizers.client import wechat_client
from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential, Platform
from authorizers.platforms import component_appid_of, platform_detail
from authorizers.revocation import authorizer_revoke
from errorkit import DomainError
from wechat.errors import (
    AuthorizationRevoked,
    ComponentTicketInvalid,
    NoVerifyTicket,
    PlatformBlocked,
    RefreshTokenInvalid,
    TokenInvalid,
    WeChatError,
)
from wechat.results import parse_authorization_info, parse_authorizer_list

log = logging.getLogger(__name__)

T = TypeVar("T")

TICKET_LIFETIME = timedelta(hours=12)
# However many calls find the ticket bad at once, api_start_push_ticket is asked at most this often.
PUSH_RESTART_INTERVAL = timedelta(minutes=10)
# api_get_authorizer_list pages (500 each) read at most, looking for one merchant's refresh token.
MAX_LIST_PAGES = 200


class AuthorizerInactive(DomainError):
    """The merchant is not active (it revoked the authorization, or staff deactivated it): nothing
    can be called on its behalf until it authorizes again."""

    code = "not_active"
    status = 403

    def __init__(self, appid: str) -> None:
        super().__init__(appid)  # str(): the appid, as logs and tasks have always shown it
        self.message = "this merchant is not active (it revoked the authorization, or staff deactivated it)"
        self.appid = appid


# --- contexts: bind each ciphertext to its row and field ---------------------------------------


def component_ctx(appid: str, field: str) -> str:
    return f"component:{appid}:{field}"


def _scope(platform: Platform | None) -> str:
    # The default platform's rows keep the contexts they had before platforms existed (their stored
    # ciphertexts read unchanged); another platform's name it too, so a merchant's two authorizations
    # cannot read each other's tokens.
    return "" if platform is None or platform.from_environment else f"{platform.component_appid}:"


def authorizer_ctx(appid: str, field: str, platform: Platform | None = None) -> str:
    return f"authorizer:{_scope(platform)}{appid}:{field}"


def event_code_ctx(info_type: str, appid: str, platform: Platform | None = None) -> str:
    return f"event:{_scope(platform)}{info_type}:{appid}:code"


def platform_of(row: Authorizer | Any) -> Platform | None:
    """The platform of a row with a ``platform`` (None while unsaved without one: the default)."""
    return row.platform if row.platform_id is not None else None


def _fresh(expires_at: datetime | None, *, margin: int | None = None) -> bool:
    margin = settings.WECHAT_TOKEN_REFRESH_MARGIN if margin is None else margin
    return expires_at is not None and expires_at - timedelta(seconds=margin) > timezone.now()


# --- verify ticket -----------------------------------------------------------------------------


def _credential(platform: Platform | None = None, for_update: bool = False) -> ComponentCredential:
    appid = component_appid_of(platform)
    queryset = ComponentCredential.objects.select_for_update() if for_update else ComponentCredential.objects
    credential, _ = queryset.get_or_create(component_appid=appid)
    return credential


def verify_ticket_store(*, ticket: str, created_at: datetime, platform: Platform | None = None) -> bool:
    """Keep the platform's newest ticket. Returns False when an older push arrives after a newer one."""
    appid = component_appid_of(platform)
    ComponentCredential.objects.get_or_create(component_appid=appid)
    updated = (
        ComponentCredential.objects.filter(component_appid=appid)
        .exclude(ticket_created_at__gt=created_at)
        .update(
            verify_ticket_ciphertext=fieldcrypto.encrypt(ticket, context=component_ctx(appid, "verify_ticket")),
            ticket_created_at=created_at,
            ticket_received_at=timezone.now(),
        )
    )
    return updated == 1


def _verify_ticket(credential: ComponentCredential) -> str:
    if credential.ticket_created_at is None:
        raise NoVerifyTicket(errmsg="no component_verify_ticket received yet")
    if not credential.verify_ticket_ciphertext:
        raise NoVerifyTicket(errmsg="WeChat refused the last component_verify_ticket; waiting for its next push")
    if credential.ticket_created_at + TICKET_LIFETIME < timezone.now():
        raise NoVerifyTicket(errmsg="the newest component_verify_ticket is older than 12 hours")
    return fieldcrypto.decrypt(
        credential.verify_ticket_ciphertext, context=component_ctx(credential.component_appid, "verify_ticket")
    )


# --- component token ---------------------------------------------------------------------------


def component_token_get(*, rejected: str | None = None, platform: Platform | None = None) -> str:
    """A valid component_access_token of the platform; ``rejected`` is a token WeChat just refused
    (40001/42001).

    What WeChat refuses is forgotten, so no caller sends it again: a rejected token at once, a ticket
    answered 61005/61006 too (and a new push is asked for). Until the next push, a refresh raises
    NoVerifyTicket without calling WeChat; the push brings a ticket and the next call refreshes.
    """
    credential = _credential(platform)
    token = _component_token_if_fresh(credential)
    if token is not None and token != rejected:
        return token
    failure: WeChatError | None = None
    with transaction.atomic():
        credential = _credential(platform, for_update=True)
        token = _component_token_if_fresh(credential)
        if token is not None and token != rejected:
            return token
        if token is not None:
            _component_token_forget(credential)  # the one WeChat refused: dead for every caller
        ticket = _verify_ticket_or_none(credential)
        if ticket is not None:
            try:
                result = wechat_client(platform).component_token(verify_ticket=ticket)
            except WeChatError as exc:
                failure = exc
                if isinstance(exc, ComponentTicketInvalid):
                    # Under the row lock: a push arriving meanwhile is stored after this, and kept.
                    _verify_ticket_forget(credential)
            else:
                token = result["component_access_token"]
                now = timezone.now()
                credential.access_token_ciphertext = fieldcrypto.encrypt(
                    token, context=component_ctx(credential.component_appid, "access_token")
                )
                credential.access_token_expires_at = now + timedelta(seconds=int(result.get("expires_in", 7200)))
                credential.access_token_refreshed_at = now
                credential.refresh_count = F("refresh_count") + 1
                credential.save(
                    update_fields=[
                        "access_token_ciphertext",
                        "access_token_expires_at",
                        "access_token_refreshed_at",
                        "refresh_count",
                    ]
                )
    if ticket is None:
        _verify_ticket(credential)  # raises NoVerifyTicket, saying why, once the forgetting has committed
    _audit_refresh(AuditAction.WECHAT_COMPONENT_TOKEN_CALLED, failure, platform=platform)
    if isinstance(failure, ComponentTicketInvalid):
        # 61005/61006: the stored ticket is dead; ask WeChat to push a new one (docs/wechat.md §2, §3).
        verify_ticket_push_request(platform=platform)
    if failure is not None:
        raise failure
    assert token is not None, "no failure means WeChat issued a token"
    log.info("component access token refreshed for %s", credential.component_appid)
    return token


def _verify_ticket_or_none(credential: ComponentCredential) -> str | None:
    try:
        return _verify_ticket(credential)
    except NoVerifyTicket:
        return None


def _verify_ticket_forget(credential: ComponentCredential) -> None:
    """Drop a ticket WeChat refused; its CreateTime stays, so an older push is still not taken."""
    credential.verify_ticket_ciphertext = ""
    credential.save(update_fields=["verify_ticket_ciphertext"])
    log.warning("WeChat refused the stored component_verify_ticket: dropped it, waiting for the next push")


def _component_token_forget(credential: ComponentCredential) -> None:
    """Drop a token WeChat refused: until a refresh succeeds there is none, rather than a dead one."""
    credential.access_token_ciphertext = ""
    credential.access_token_expires_at = None
    credential.save(update_fields=["access_token_ciphertext", "access_token_expires_at"])


def verify_ticket_push_request(
    *, interval: timedelta = PUSH_RESTART_INTERVAL, platform: Platform | None = None
) -> bool:
    """Call the platform's api_start_push_ticket, at most once per ``interval`` across every process.

    Both callers share the one fence (``push_restart_requested_at``): a 61005/61006 on a token
    refresh, and the verify-ticket watchdog when pushes stop (authorizers/ticket_watch.py).
    """
    now = timezone.now()
    appid = _credential(platform).component_appid
    claimed = (
        ComponentCredential.objects.filter(component_appid=appid)
        .filter(Q(push_restart_requested_at__isnull=True) | Q(push_restart_requested_at__lt=now - interval))
        .update(push_restart_requested_at=now)
    )
    if not claimed:
        return False
    try:
        wechat_client(platform).start_push_ticket()
    except WeChatError as exc:
        platform_error_seen(exc, appid)
        _audit_refresh(AuditAction.WECHAT_START_PUSH_TICKET_CALLED, exc, platform=platform)
        return False
    _audit_refresh(AuditAction.WECHAT_START_PUSH_TICKET_CALLED, None, platform=platform)
    log.warning("verify ticket of %s missing, expired or invalid: asked WeChat to push a new one", appid)
    return True


def _component_token_if_fresh(credential: ComponentCredential) -> str | None:
    if not credential.access_token_ciphertext or not _fresh(credential.access_token_expires_at):
        return None
    return fieldcrypto.decrypt(
        credential.access_token_ciphertext, context=component_ctx(credential.component_appid, "access_token")
    )


def with_component_token(call: Callable[[str], T], platform: Platform | None = None) -> T:
    """Run ``call(token)`` with the platform's component token; if WeChat says the token is invalid,
    refresh once and retry once.

    Platform-level errors (61004) open that platform's alert; a call that goes through closes it.
    """
    appid = component_appid_of(platform)
    try:
        token = component_token_get(platform=platform)
        try:
            result = call(token)
        except TokenInvalid:
            result = call(component_token_get(rejected=token, platform=platform))
    except WeChatError as exc:
        platform_error_seen(exc, appid)
        raise
    platform_call_succeeded(appid)
    return result


# While the platform is blocked, held work probes it at most this often (every process together).
PLATFORM_RECHECK_INTERVAL = timedelta(minutes=1)


def platform_recheck(platform: Platform | None = None) -> bool:
    """The platform is blocked: probe it, at most once per interval; True when the probe cleared it.

    Held deletions call this when they come due, so they resume within about a minute of the cause
    clearing (a whitelist fixed, a new ticket pushed) instead of waiting for the beat's probe.
    """
    appid = component_appid_of(platform)
    return platform_recheck_claim(interval=PLATFORM_RECHECK_INTERVAL, component_appid=appid) and platform_probe(
        platform
    )


def platform_probe(platform: Platform | None = None) -> bool:
    """One cheap component call (a pre-auth code) to see whether a platform alert still holds."""
    try:
        with_component_token(lambda token: wechat_client(platform).create_preauthcode(component_token=token), platform)
    except (WeChatError, NoVerifyTicket):
        return False
    return True


# --- authorizer tokens -------------------------------------------------------------------------


def authorizer_tokens_store(
    *, authorizer: Authorizer, access_token: str | None, expires_in: int | None, refresh_token: str | None
) -> None:
    """Put freshly issued tokens on the (unsaved or locked) row; the caller saves it."""
    platform = platform_of(authorizer)
    if refresh_token:
        authorizer.refresh_token_ciphertext = fieldcrypto.encrypt(
            refresh_token, context=authorizer_ctx(authorizer.appid, "refresh_token", platform)
        )
    if access_token:
        now = timezone.now()
        authorizer.access_token_ciphertext = fieldcrypto.encrypt(
            access_token, context=authorizer_ctx(authorizer.appid, "access_token", platform)
        )
        authorizer.access_token_expires_at = now + timedelta(seconds=int(expires_in or 7200))
        authorizer.access_token_refreshed_at = now


def refresh_token_of(authorizer: Authorizer) -> str:
    return fieldcrypto.decrypt(
        authorizer.refresh_token_ciphertext,
        context=authorizer_ctx(authorizer.appid, "refresh_token", platform_of(authorizer)),
    )


def _authorizer_token_if_fresh(authorizer: Authorizer, margin: int | None = None) -> str | None:
    if not authorizer.access_token_ciphertext or not _fresh(authorizer.access_token_expires_at, margin=margin):
        return None
    return fieldcrypto.decrypt(
        authorizer.access_token_ciphertext,
        context=authorizer_ctx(authorizer.appid, "access_token", platform_of(authorizer)),
    )


def authorizer_token_get(*, authorizer_id: int, rejected: str | None = None, force: bool = False) -> str:
    """A valid authorizer_access_token for this merchant, refreshing it single-flight when needed.

    ``force`` refreshes even a fresh token (the admin's "refresh now").
    ``rejected`` is the token WeChat just refused: it is replaced only if it is still the current one,
    so 200 callers holding the same dead token cause one refresh, not 200.
    """
    authorizer = Authorizer.objects.select_related("platform").get(pk=authorizer_id)
    _ensure_active(authorizer)
    if not force:
        token = _authorizer_token_if_fresh(authorizer)
        if token is not None and token != rejected:
            return token
    failure: WeChatError | None = None
    with transaction.atomic():
        # of=self: the merchant's row only, never its platform's (every refresh would queue on it).
        authorizer = Authorizer.objects.select_for_update(of=("self",)).select_related("platform").get(pk=authorizer_id)
        _ensure_active(authorizer)
        current = _authorizer_token_if_fresh(authorizer)
        if not force and current is not None and current != rejected:
            return current
        try:
            result = _refresh_with_recovery(authorizer)
        except AuthorizationRevoked as exc:
            # Revoke under the row lock, so no second refresh is tried; raise once it has committed.
            authorizer_revoke(
                appid=authorizer.appid, actor=Actor.system("token refresh"), cause=exc, platform=authorizer.platform
            )
            failure = exc
        except WeChatError as exc:
            failure = exc  # audited below, outside the transaction, so the record survives
        else:
            token = result["authorizer_access_token"]
            authorizer_tokens_store(
                authorizer=authorizer,
                access_token=token,
                expires_in=result.get("expires_in"),
                # WeChat returns the refresh token on every refresh; it may change, so always keep it.
                refresh_token=result.get("authorizer_refresh_token"),
            )
            authorizer.token_refresh_count = F("token_refresh_count") + 1
            authorizer.save(
                update_fields=[
                    "access_token_ciphertext",
                    "access_token_expires_at",
                    "access_token_refreshed_at",
                    "refresh_token_ciphertext",
                    "token_refresh_count",
                ]
            )
    _audit_refresh(AuditAction.WECHAT_AUTHORIZER_TOKEN_CALLED, failure, authorizer_appid=authorizer.appid)
    if isinstance(failure, AuthorizationRevoked):
        raise AuthorizerInactive(authorizer.appid) from failure
    if failure is not None:
        raise failure
    assert token is not None, "no failure means WeChat issued a token"
    log.info("authorizer access token refreshed for %s", authorizer.appid)
    return token


def _refresh_call(appid: str, refresh_token: str, platform: Platform | None) -> dict[str, Any]:
    return with_component_token(
        lambda component_token: wechat_client(platform).authorizer_token(
            component_token=component_token, authorizer_appid=appid, refresh_token=refresh_token
        ),
        platform,
    )


def _refresh_with_recovery(authorizer: Authorizer) -> dict[str, Any]:
    """api_authorizer_token; on 61023 one recovery attempt (docs/wechat.md §6), under the caller's row lock.

    61023 is not a revocation: WeChat answers it when the refresh token we hold is no longer the
    current one (it rotated, the merchant re-authorized, the events URL changed). WeChat staff's fix:
    read the current one (``refresh_token_read``), store it, retry once. A second 61023 is raised as
    it is: the merchant stays active, and reconciliation or staff take it from there.
    """
    platform = platform_of(authorizer)
    try:
        return _refresh_call(authorizer.appid, refresh_token_of(authorizer), platform)
    except RefreshTokenInvalid as exc:
        _audit_refresh(AuditAction.WECHAT_AUTHORIZER_TOKEN_CALLED, exc, authorizer_appid=authorizer.appid)
    try:
        current = refresh_token_read(authorizer.appid, platform)
        result = _refresh_call(authorizer.appid, current, platform)
    except WeChatError as exc:
        _audit_recovery(authorizer.appid, exc)
        raise
    # Stored now even if the answer below carries none: it is the one WeChat just accepted.
    authorizer_tokens_store(authorizer=authorizer, access_token=None, expires_in=None, refresh_token=current)
    _audit_recovery(authorizer.appid, None)
    return result


def authorizer_restore(*, appid: str, refresh_token: str, actor: Actor, platform: Platform | None = None) -> bool:
    """WeChat still lists this merchant with ``refresh_token``: make it work here again.

    For a merchant revoked here (a 61023 read as a revocation before issue 16, a lost push) or an
    active one whose refresh token was refused and not recovered. The listed token is tried with one
    refresh; if WeChat accepts it the merchant is active with fresh tokens (a deactivated merchant is
    staff's decision and is left alone). Raises the ``WeChatError`` WeChat answered otherwise.
    """
    with transaction.atomic():
        authorizer = (
            Authorizer.objects.select_for_update(of=("self",))
            .select_related("platform")
            .filter(appid=appid, platform__component_appid=component_appid_of(platform))
            .first()
        )
        if authorizer is None or authorizer.status == AuthorizerStatus.DEACTIVATED:
            return False
        was = authorizer.status
        result = _refresh_call(appid, refresh_token, authorizer.platform)
        authorizer_tokens_store(
            authorizer=authorizer,
            access_token=result["authorizer_access_token"],
            expires_in=result.get("expires_in"),
            refresh_token=result.get("authorizer_refresh_token") or refresh_token,
        )
        authorizer.status = AuthorizerStatus.ACTIVE
        authorizer.revoked_at = None
        authorizer.save()
        audit_record(
            actor=actor,
            action=AuditAction.AUTHORIZER_RESTORED,
            authorizer_appid=appid,
            outcome="restored",
            errcode=0,
            detail={"was": was},
        )
    log.warning("merchant %s restored from api_get_authorizer_list (was %s)", appid, was)
    return True


def refresh_token_read(appid: str, platform: Platform | None = None) -> str:
    """WeChat's current refresh token for a merchant: api_get_authorizer_info, else api_get_authorizer_list.

    Raises ``AuthorizationRevoked`` when WeChat says the merchant is not authorized (61003) or no
    longer lists it: the only two answers that mean the authorization is gone (docs/wechat.md §6).
    ``RefreshTokenInvalid`` when it is listed without a refresh token (its code was never exchanged).
    """
    client = wechat_client(platform)
    info = with_component_token(
        lambda token: client.get_authorizer_info(component_token=token, authorizer_appid=appid), platform
    )
    current = parse_authorization_info(info).refresh_token
    if current:
        return current
    offset = 0
    for _ in range(MAX_LIST_PAGES):

        def read_page(token: str, offset: int = offset) -> dict[str, Any]:
            return client.get_authorizer_list(component_token=token, offset=offset, count=500)

        total, items = parse_authorizer_list(with_component_token(read_page, platform))
        for item in items:
            if item.authorizer_appid == appid:
                if item.refresh_token:
                    return item.refresh_token
                raise RefreshTokenInvalid(None, "listed by api_get_authorizer_list without a refresh token")
        offset += len(items)
        if not items or offset >= total:
            break
    raise AuthorizationRevoked(None, "api_get_authorizer_list no longer lists this merchant")


def _audit_recovery(appid: str, failure: WeChatError | None) -> None:
    audit_record(
        actor=Actor.system("token refresh"),
        action=AuditAction.AUTHORIZER_REFRESH_TOKEN_RECOVERED
        if failure is None
        else AuditAction.AUTHORIZER_REFRESH_TOKEN_RECOVERY_FAILED,
        authorizer_appid=appid,
        outcome="recovered" if failure is None else failure.reason,
        errcode=0 if failure is None else failure.errcode,
        errmsg="" if failure is None else failure.errmsg,
        rid=None if failure is None else failure.rid,
        detail={"errcode": 61023},
    )


def _audit_refresh(
    action: AuditAction, failure: WeChatError | None, *, authorizer_appid: str = "", platform: Platform | None = None
) -> None:
    """One audit event per token call to WeChat, whatever its outcome (a component call names its
    platform unless it is the default one)."""
    where = platform_detail(platform)
    if failure is None:
        audit_record(
            actor=Actor.system("token refresh"),
            action=action,
            authorizer_appid=authorizer_appid,
            outcome="ok",
            errcode=0,
            detail=where,
        )
    else:
        audit_record(
            actor=Actor.system("token refresh"),
            action=action,
            authorizer_appid=authorizer_appid,
            outcome=failure.reason,
            errcode=failure.errcode,
            errmsg=failure.errmsg,
            rid=failure.rid,
            detail={"path": failure.path or "", **where},
        )


def with_authorizer_token(authorizer_id: int, call: Callable[[str], T]) -> T:
    """Run ``call(token)``; on 40001/40014/42001 refresh once (if still current) and retry once."""
    token = authorizer_token_get(authorizer_id=authorizer_id)
    try:
        try:
            return call(token)
        except TokenInvalid:
            return call(authorizer_token_get(authorizer_id=authorizer_id, rejected=token))
    except WeChatError as exc:
        if isinstance(exc, PlatformBlocked):  # the only errors platform_error_seen acts on
            # Its platform is read only then: no other call pays for the query.
            platform_error_seen(exc, _component_appid_of_authorizer(authorizer_id))
        raise


def _component_appid_of_authorizer(authorizer_id: int) -> str | None:
    return Authorizer.objects.filter(pk=authorizer_id).values_list("platform__component_appid", flat=True).first()


def authorizers_needing_refresh() -> list[int]:
    """Active merchants whose token is missing or inside the refresh margin."""
    horizon = timezone.now() + timedelta(seconds=settings.WECHAT_TOKEN_REFRESH_MARGIN)
    return list(
        Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE)
        .exclude(refresh_token_ciphertext="")
        .filter(Q(access_token_expires_at__isnull=True) | Q(access_token_expires_at__lte=horizon))
        .values_list("pk", flat=True)
    )


def _ensure_active(authorizer: Authorizer) -> None:
    if authorizer.status != AuthorizerStatus.ACTIVE:
        raise AuthorizerInactive(authorizer.appid)
