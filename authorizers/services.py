"""Every write about merchants: authorization, pushes from WeChat, re-reading info (revocation: revocation.py).

Each is about one platform (``platform`` None: the default one): a push is recorded and applied for
the platform whose URL it arrived on, and a code is exchanged with that platform's component token.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers import fieldcrypto
from authorizers.client import wechat_client
from authorizers.dispatch import authorization_event_process_send, authorizer_info_refresh_send
from authorizers.flow_errors import CodeReplayed
from authorizers.models import AuthorizationCodeExchange, Authorizer, AuthorizerStatus, ComponentEvent, Platform
from authorizers.platforms import platform_default, platform_detail
from authorizers.policy import account_kind
from authorizers.revocation import authorizer_revoke
from authorizers.tokens import (
    AuthorizerInactive,
    authorizer_token_get,
    authorizer_tokens_store,
    event_code_ctx,
    verify_ticket_store,
    with_component_token,
)
from errorkit import DomainError
from wechat.errors import TokenInvalid, Transient, WeChatError, error_for
from wechat.results import AuthorizerInfo, parse_authorization_info, parse_authorizer_info

log = logging.getLogger(__name__)

INFO_TICKET = "component_verify_ticket"
INFO_AUTHORIZED = "authorized"
INFO_UPDATE_AUTHORIZED = "updateauthorized"
INFO_UNAUTHORIZED = "unauthorized"
# Fields of a push that are secrets and never stored in ComponentEvent.fields.
SECRET_FIELDS = frozenset({"ComponentVerifyTicket", "AuthorizationCode", "PreAuthCode"})


class BadEvent(DomainError, ValueError):
    """A decrypted push that is not a usable component event (missing or malformed fields)."""

    code = "bad_event"


# --- authorization -----------------------------------------------------------------------------


def preauth_code_create(*, platform: Platform | None = None) -> str:
    result = with_component_token(
        lambda token: wechat_client(platform).create_preauthcode(component_token=token), platform
    )
    return result["pre_auth_code"]


class ExchangeInProgress(Transient):
    """The other path (callback or push) is exchanging this code right now: its result will be shared."""


# A claim on a code whose holder has not finished after this long is presumed dead (crashed).
EXCHANGE_LEASE = timedelta(seconds=60)
EXCHANGE_POLL_SECONDS = 0.2


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _exchange_claim(digest: str) -> tuple[bool, AuthorizationCodeExchange]:
    """Insert the code's row (we exchange it) or find the other path's; a dead claim is taken over."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return True, AuthorizationCodeExchange.objects.create(
                code_sha256=digest, lease_expires_at=now + EXCHANGE_LEASE
            )
    except IntegrityError:
        pass
    taken = AuthorizationCodeExchange.objects.filter(
        code_sha256=digest, state=AuthorizationCodeExchange.State.EXCHANGING, lease_expires_at__lt=now
    ).update(lease_expires_at=now + EXCHANGE_LEASE)
    return bool(taken), AuthorizationCodeExchange.objects.get(code_sha256=digest)


def _exchange_wait(exchange: AuthorizationCodeExchange, wait: float) -> AuthorizationCodeExchange:
    deadline = time.monotonic() + wait
    while exchange.state == AuthorizationCodeExchange.State.EXCHANGING and time.monotonic() < deadline:
        time.sleep(EXCHANGE_POLL_SECONDS)
        exchange.refresh_from_db()
    return exchange


def authorizer_authorize(
    *,
    authorization_code: str,
    actor: Actor,
    event_time: datetime | None = None,
    via_callback: bool = False,
    wait: float = 0.0,
    platform: Platform | None = None,
) -> Authorizer:
    """Exchange an authorization code of ``platform`` once and keep what WeChat says about the account
    (its authorization of that platform: the same account's authorization of another is another row).

    The browser's return and the ``authorized`` push both carry the code, and WeChat honours a code
    once (61009 after). Whichever path claims the code first calls api_query_auth; the other gets
    the stored result (waiting up to ``wait`` seconds if the exchange is under way, else
    ExchangeInProgress, a Transient its task retries). ``via_callback`` refuses a code the browser
    callback has presented before (CodeReplayed).
    """
    digest = _code_digest(authorization_code)
    mine, exchange = _exchange_claim(digest)
    if via_callback and not AuthorizationCodeExchange.objects.filter(
        pk=exchange.pk, callback_seen_at__isnull=True
    ).update(callback_seen_at=timezone.now()):
        raise CodeReplayed("this authorization code was used already")
    if not mine:
        exchange = _exchange_wait(exchange, wait)
        if exchange.state == AuthorizationCodeExchange.State.SUCCEEDED and exchange.authorizer_id is not None:
            return _shared_result(exchange, event_time)
        if exchange.state == AuthorizationCodeExchange.State.FAILED:
            raise error_for(exchange.errcode or 61009, exchange.errmsg, path="api_query_auth (the other path)")
        raise ExchangeInProgress(None, "the other path is exchanging this authorization code")

    platform = platform or platform_default()
    client = wechat_client(platform)
    try:
        auth = parse_authorization_info(
            with_component_token(
                lambda token: client.query_auth(component_token=token, authorization_code=authorization_code),
                platform,
            )
        )
    except (Transient, TokenInvalid):
        # WeChat did not (or may not have) honoured it: release the claim so a retry may exchange it.
        AuthorizationCodeExchange.objects.filter(
            pk=exchange.pk, state=AuthorizationCodeExchange.State.EXCHANGING
        ).delete()
        raise
    except WeChatError as exc:
        AuthorizationCodeExchange.objects.filter(pk=exchange.pk).update(
            state=AuthorizationCodeExchange.State.FAILED,
            errcode=exc.errcode,
            errmsg=exc.errmsg[:255],
            finished_at=timezone.now(),
        )
        raise
    # The code is spent now. If the account details cannot be read, keep the tokens anyway and read
    # the details later: a second exchange would only get 61009.
    details: dict | None
    try:
        details = with_component_token(
            lambda token: client.get_authorizer_info(component_token=token, authorizer_appid=auth.authorizer_appid),
            platform,
        )
    except WeChatError as exc:
        log.warning(
            "authorizer info for %s not read after the exchange (%s); re-read later", auth.authorizer_appid, exc
        )
        details = None
    with transaction.atomic():
        authorizer = _lock_or_create(auth.authorizer_appid, platform)
        stale = event_time is not None and authorizer.last_event_at and authorizer.last_event_at > event_time
        if not stale:  # else a newer push has been applied already
            if details is not None:
                _apply_info(authorizer, parse_authorizer_info(details))
            # api_get_authorizer_info's func_info is the newer reading when present.
            granted = (_granted_from(details) if details is not None else None) or auth.func_ids
            authorizer.func_ids = sorted(granted)
            authorizer.status = AuthorizerStatus.ACTIVE
            authorizer.authorized_at = timezone.now()
            authorizer.revoked_at = None
            if event_time is not None:
                authorizer.last_event_at = event_time
            authorizer_tokens_store(
                authorizer=authorizer,
                access_token=auth.access_token,
                expires_in=auth.expires_in,
                refresh_token=auth.refresh_token,
            )
            authorizer.save()
            audit_record(
                actor=actor,
                action=AuditAction.AUTHORIZER_AUTHORIZED,
                authorizer_appid=authorizer.appid,
                outcome="ok",
                detail={"func_ids": authorizer.func_ids, "kind": authorizer.kind, **platform_detail(platform)},
            )
            if details is None:
                authorizer_info_refresh_send(authorizer_id=authorizer.pk)
        AuthorizationCodeExchange.objects.filter(pk=exchange.pk).update(
            state=AuthorizationCodeExchange.State.SUCCEEDED, authorizer=authorizer, finished_at=timezone.now()
        )
    return authorizer


def _shared_result(exchange: AuthorizationCodeExchange, event_time: datetime | None) -> Authorizer:
    """The other path exchanged the code: its result is ours (a push still moves last_event_at on)."""
    authorizer_id = exchange.authorizer_id
    assert authorizer_id is not None  # a succeeded exchange names its authorizer
    if event_time is not None:
        Authorizer.objects.filter(pk=authorizer_id).filter(
            Q(last_event_at__isnull=True) | Q(last_event_at__lt=event_time)
        ).update(last_event_at=event_time)
    return Authorizer.objects.get(pk=authorizer_id)


def _audit_wechat_failure(actor: Actor, action: AuditAction, authorizer: Authorizer, exc: WeChatError) -> None:
    """Audit an operator action on `authorizer` that WeChat refused: its reason, errcode, errmsg, rid."""
    audit_record(
        actor=actor,
        action=action,
        authorizer_appid=authorizer.appid,
        outcome=exc.reason,
        errcode=exc.errcode,
        errmsg=exc.errmsg,
        rid=exc.rid,
    )


def authorizer_info_refresh(*, authorizer_id: int, actor: Actor) -> Authorizer:
    """Re-read type, certification, status and granted permission sets (e.g. after 48001/61007)."""
    authorizer = Authorizer.objects.select_related("platform").get(pk=authorizer_id)
    platform = authorizer.platform
    try:
        details = with_component_token(
            lambda token: wechat_client(platform).get_authorizer_info(
                component_token=token, authorizer_appid=authorizer.appid
            ),
            platform,
        )
    except WeChatError as exc:
        _audit_wechat_failure(actor, AuditAction.AUTHORIZER_INFO_REFRESHED, authorizer, exc)
        raise
    info = parse_authorizer_info(details)
    granted = _granted_from(details)
    with transaction.atomic():
        authorizer = Authorizer.objects.select_for_update(of=("self",)).select_related("platform").get(pk=authorizer_id)
        before = sorted(authorizer.func_ids or [])
        _apply_info(authorizer, info)
        if granted is not None:
            authorizer.func_ids = sorted(granted)
        authorizer.save()
        audit_record(
            actor=actor,
            action=AuditAction.AUTHORIZER_INFO_REFRESHED,
            authorizer_appid=authorizer.appid,
            outcome="ok",
            detail={"func_ids_before": before, "func_ids": authorizer.func_ids},
        )
    return authorizer


def authorizer_token_refresh(*, authorizer: Authorizer, actor: Actor) -> Authorizer:
    """Refresh the merchant's access token now, whatever its age (the console's "refresh token").

    The call itself is audited by tokens.py; this records who asked and how it ended.
    """
    try:
        authorizer_token_get(authorizer_id=authorizer.pk, force=True)
    except WeChatError as exc:
        _audit_wechat_failure(actor, AuditAction.AUTHORIZER_TOKEN_REFRESH_REQUESTED, authorizer, exc)
        raise
    except AuthorizerInactive:
        audit_record(
            actor=actor,
            action=AuditAction.AUTHORIZER_TOKEN_REFRESH_REQUESTED,
            authorizer_appid=authorizer.appid,
            outcome="not_active",
        )
        raise
    authorizer.refresh_from_db()
    audit_record(
        actor=actor,
        action=AuditAction.AUTHORIZER_TOKEN_REFRESH_REQUESTED,
        authorizer_appid=authorizer.appid,
        outcome="ok",
        detail={
            "expires_at": authorizer.access_token_expires_at.isoformat() if authorizer.access_token_expires_at else ""
        },
    )
    return authorizer


def _lock_or_create(appid: str, platform: Platform) -> Authorizer:
    rows = Authorizer.objects.select_for_update(of=("self",))
    try:
        with transaction.atomic():
            authorizer, _ = rows.get_or_create(appid=appid, platform=platform)
    except IntegrityError:  # created concurrently by the callback or the push
        authorizer = rows.get(appid=appid, platform=platform)
    return authorizer


def _apply_info(authorizer: Authorizer, info: AuthorizerInfo) -> None:
    authorizer.nickname = info.nick_name or authorizer.nickname
    authorizer.user_name = info.user_name or authorizer.user_name
    authorizer.alias = info.alias or ""
    authorizer.principal_name = info.principal_name or authorizer.principal_name
    authorizer.service_type_id = info.service_type_id
    authorizer.verify_type_id = info.verify_type_id
    authorizer.account_status = info.account_status
    authorizer.kind = account_kind(service_type_id=info.service_type_id, is_mini_program=info.is_mini_program)
    authorizer.info_refreshed_at = timezone.now()


def _granted_from(details: dict) -> frozenset[int] | None:
    section = details.get("authorization_info")
    if not isinstance(section, dict) or "func_info" not in section:
        return None
    return parse_authorization_info({"authorization_info": section}).func_ids


# --- pushes on the events URL ------------------------------------------------------------------


def component_event_receive(*, fields: dict[str, str], platform: Platform | None = None) -> ComponentEvent | None:
    """Record a decrypted push of ``platform`` and apply what can be applied without calling WeChat.

    Returns None for a duplicate (WeChat retries pushes): it was handled the first time.
    Authorization codes are exchanged by a task, so the push is answered within milliseconds.
    """
    info_type = fields.get("InfoType", "").strip()
    if not info_type:
        raise BadEvent("InfoType is missing")
    create_time = _create_time(fields.get("CreateTime", ""))
    authorizer_appid = fields.get("AuthorizerAppid", "").strip()
    code = fields.get("AuthorizationCode", "").strip()
    if info_type == INFO_TICKET and not fields.get("ComponentVerifyTicket", "").strip():
        raise BadEvent("ComponentVerifyTicket is missing")
    if info_type in (INFO_AUTHORIZED, INFO_UPDATE_AUTHORIZED) and not (authorizer_appid and code):
        raise BadEvent("AuthorizerAppid and AuthorizationCode are required")
    if info_type == INFO_UNAUTHORIZED and not authorizer_appid:
        raise BadEvent("AuthorizerAppid is required")

    platform = platform or platform_default()
    parts = [info_type, authorizer_appid, fields.get("CreateTime", ""), code, fields.get("ComponentVerifyTicket", "")]
    if not platform.from_environment:
        # Another platform's pushes are told apart from the default one's (the same merchant may
        # revoke both at the same second); the default one's keys stay what they were.
        parts.append(platform.component_appid)
    identity = "|".join(parts)
    try:
        with transaction.atomic():
            event = ComponentEvent.objects.create(
                platform=platform,
                dedupe_key=hashlib.sha256(identity.encode("utf-8")).hexdigest(),
                info_type=info_type[:48],
                authorizer_appid=authorizer_appid[:32],
                create_time=create_time,
                fields={k: v for k, v in fields.items() if k not in SECRET_FIELDS},
                authorization_code_ciphertext=(
                    fieldcrypto.encrypt(code, context=event_code_ctx(info_type, authorizer_appid, platform))
                    if code
                    else ""
                ),
            )
            _apply_inline(event, fields)
    except IntegrityError:
        return None
    return event


def _apply_inline(event: ComponentEvent, fields: dict[str, str]) -> None:
    now = timezone.now()
    if event.info_type == INFO_TICKET:
        verify_ticket_store(
            ticket=fields["ComponentVerifyTicket"].strip(), created_at=event.create_time, platform=event.platform
        )
        event.state = ComponentEvent.State.PROCESSED
    elif event.info_type == INFO_UNAUTHORIZED:
        # Its authorization of this platform only: the same account's other authorizations stay.
        changed = authorizer_revoke(
            appid=event.authorizer_appid, actor=Actor.wechat(), event_time=event.create_time, platform=event.platform
        )
        event.state = ComponentEvent.State.PROCESSED if changed else ComponentEvent.State.IGNORED
    elif event.info_type in (INFO_AUTHORIZED, INFO_UPDATE_AUTHORIZED):
        authorization_event_process_send(event_id=event.pk)
        return
    else:
        event.state = ComponentEvent.State.IGNORED  # other InfoTypes are not ours to act on
    event.processed_at = now
    event.save(update_fields=["state", "processed_at"])


def component_event_process(*, event_id: int) -> None:
    """Exchange the code of an authorized/updateauthorized push (run by a task)."""
    event = ComponentEvent.objects.select_related("platform").get(pk=event_id)
    if event.state != ComponentEvent.State.RECEIVED:
        return
    code = fieldcrypto.decrypt(
        event.authorization_code_ciphertext,
        context=event_code_ctx(event.info_type, event.authorizer_appid, event.platform),
    )
    authorizer_authorize(
        authorization_code=code, actor=Actor.wechat(), event_time=event.create_time, platform=event.platform
    )
    ComponentEvent.objects.filter(pk=event.pk, state=ComponentEvent.State.RECEIVED).update(
        state=ComponentEvent.State.PROCESSED, processed_at=timezone.now()
    )


def component_event_fail(*, event_id: int, error: str) -> None:
    ComponentEvent.objects.filter(pk=event_id, state=ComponentEvent.State.RECEIVED).update(
        state=ComponentEvent.State.FAILED, processed_at=timezone.now(), error=error[:255]
    )


def _create_time(value: str) -> datetime:
    try:
        seconds = int(value.strip())
    except ValueError:
        raise BadEvent("CreateTime must be a unix timestamp") from None
    if not 0 < seconds < 2**32:
        raise BadEvent("CreateTime is out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)
