"""Merchant API keys and the DRF authentication that reads them.

A key reads ``kfp_<prefix>_<secret>``; the database keeps the prefix (to find the row) and the
SHA-256 of the whole key. Keys are 256-bit random, so a fast digest is enough: there is nothing to
brute-force the way there is with a password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from audit.actions import AuditAction
from audit.models import ActorKind
from audit.services import Actor, audit_record
from authorizers.models import ApiKey, Authorizer
from authorizers.platforms import platform_label
from observability import context as log_context

if TYPE_CHECKING:  # rest_framework.views imports the authentication classes defined here
    from rest_framework.views import APIView

log = logging.getLogger(__name__)

KEY_PREFIX = "kfp"
# Writing last_used_at on every request would turn every read into a write; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@transaction.atomic
def api_key_issue(*, authorizer: Authorizer, actor: Actor, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(authorizer=authorizer, name=name, prefix=prefix, digest=_digest(plaintext))
    audit_record(
        actor=actor, action=AuditAction.API_KEY_ISSUED, authorizer_appid=authorizer.appid, subject=prefix, outcome="ok"
    )
    return api_key, plaintext


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> None:
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(
            actor=actor,
            action=AuditAction.API_KEY_REVOKED,
            authorizer_appid=api_key.authorizer.appid,
            subject=api_key.prefix,
            outcome="ok",
        )


def api_key_actor(api_key: ApiKey) -> Actor:
    return Actor(kind=ActorKind.API_KEY, id=str(api_key.pk), label=f"{api_key.prefix}…")


@dataclass(frozen=True)
class Merchant:
    """request.user for API calls: the merchant an API key speaks for."""

    authorizer: Authorizer
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def actor(self) -> Actor:
        return api_key_actor(self.api_key)


def request_merchant(request: Request) -> Merchant:
    """``request.user`` of a merchant API view, typed as what ApiKeyAuthentication put there."""
    user = request.user
    if not isinstance(user, Merchant):
        raise exceptions.NotAuthenticated("an API key is required")
    return user


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[Merchant, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword:
            return None
        key = key.strip()
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise exceptions.AuthenticationFailed("malformed API key")
        # The platform in the same query: the log lines of the request name it (platform_label).
        api_key = ApiKey.objects.select_related("authorizer__platform").filter(prefix=parts[1]).first()
        if api_key is None or not hmac.compare_digest(api_key.digest, _digest(key)):
            raise exceptions.AuthenticationFailed("invalid API key")
        if api_key.is_revoked:
            raise exceptions.AuthenticationFailed("this API key was revoked")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        log_context.set_merchant(api_key.authorizer.appid, platform_label(api_key.authorizer.platform))
        return Merchant(authorizer=api_key.authorizer, api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsMerchant(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, Merchant)


class MerchantRateThrottle(throttling.SimpleRateThrottle):
    """Per-merchant request rate (API_RATE_LIMIT), shared across processes through the cache.

    Counted per merchant, not per key: issuing more keys does not buy a merchant more requests.
    """

    scope = "merchant"

    def get_rate(self) -> str | None:
        # Read at each request (DRF binds THROTTLE_RATES at import), so the setting is the truth.
        from rest_framework.settings import api_settings

        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return str(rate) if rate is not None else None

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache (Redis) is down: serve the request rather than answer 500
            log.warning("rate limit not checked, the cache is unavailable: %s", type(exc).__name__)
            return True

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if isinstance(request.user, Merchant):
            return self.cache_format % {"scope": self.scope, "ident": request.user.authorizer.pk}
        return None
