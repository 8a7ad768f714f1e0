"""The platforms this deployment serves: the default one from the environment, the others stored here.

A single-platform deployment configures WECHAT_COMPONENT_APPID and its secrets as before and never
meets this module: its row is made on first use (or by the migration that introduced platforms) and
holds no secret. Further platforms are added by ``manage.py platform_add`` or the console; their
appsecret, message token and AES keys are stored encrypted (fieldcrypto, bound to the platform and
field) and read back only by ``platform_secrets``, for the WeChat client and the message crypto
(authorizers/client.py). Every write here is audited; no secret is ever logged or shown again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers import fieldcrypto
from authorizers.models import Authorizer, Platform, PlatformStatus
from errorkit import DomainError

log = logging.getLogger(__name__)

COMPONENT_APPID_RE = re.compile(r"wx[0-9A-Za-z]{16}")
# WeChat's rules for what the Open Platform console accepts (docs/wechat.md §8): the message token is
# 3-32 letters or digits, the EncodingAESKey 43 letters or digits (32 bytes once decoded).
TOKEN_RE = re.compile(r"[A-Za-z0-9]{3,32}")
AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
APPSECRET_RE = re.compile(r"[0-9A-Za-z]{16,64}")
NAME_MAX = 64
DEFAULT_NAME = "default"


class PlatformError(DomainError):
    """A platform cannot be added or changed as asked (the message says which field and why)."""

    code = "invalid_platform"


class UnknownPlatform(DomainError):
    code = "unknown_platform"
    status = 404


class PlatformRetired(DomainError):
    code = "platform_retired"
    status = 410


@dataclass(frozen=True, slots=True)
class PlatformSecrets:
    """What the WeChat client and the message crypto need; never logged (no repr of the values)."""

    component_appid: str
    appsecret: str
    token: str
    aes_key: str
    previous_aes_keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"PlatformSecrets(component_appid={self.component_appid!r})"


def platform_ctx(component_appid: str, field: str) -> str:
    return f"platform:{component_appid}:{field}"


# --- reading -----------------------------------------------------------------------------------


def platform_default() -> Platform:
    """The environment's platform (WECHAT_COMPONENT_APPID), its row made on first use.

    ``is_default`` follows the environment: if WECHAT_COMPONENT_APPID names another platform than
    the flagged one (the deployment was switched to another platform), the flag moves with it.
    """
    appid = settings.WECHAT_COMPONENT_APPID
    platform = Platform.objects.filter(component_appid=appid).first()
    if platform is not None and platform.is_default:
        return platform
    with transaction.atomic():
        Platform.objects.filter(is_default=True).exclude(component_appid=appid).update(is_default=False)
        if platform is None:
            try:
                with transaction.atomic():
                    platform = Platform.objects.create(
                        component_appid=appid, name=_free_name(DEFAULT_NAME), is_default=True
                    )
            except IntegrityError:  # another process made it first
                platform = Platform.objects.get(component_appid=appid)
        if not platform.is_default:
            Platform.objects.filter(pk=platform.pk).update(is_default=True)
            platform.is_default = True
    return platform


def _free_name(name: str) -> str:
    taken = set(Platform.objects.filter(name__startswith=name).values_list("name", flat=True))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def component_appid_of(platform: Platform | None) -> str:
    """``platform``'s component appid; None is the default platform (read from the settings, no query)."""
    return settings.WECHAT_COMPONENT_APPID if platform is None else platform.component_appid


def platform_label(platform: Platform | None) -> str:
    """How log lines name a platform: not at all for the default one (its lines read as they always
    did), by component appid for another."""
    return "" if platform is None or platform.from_environment else platform.component_appid


def platform_detail(platform: Platform | None) -> dict[str, str]:
    """What an audit event about an authorization adds to name its platform: nothing for the default
    one (the events read as before platforms existed), its component appid otherwise."""
    if platform is None or platform.from_environment:
        return {}
    return {"component_appid": platform.component_appid}


def platform_get(component_appid: str) -> Platform:
    """The platform of this component appid, active; raises UnknownPlatform or PlatformRetired."""
    if component_appid == settings.WECHAT_COMPONENT_APPID:
        return platform_default()
    platform = Platform.objects.filter(component_appid=component_appid).first()
    if platform is None:
        raise UnknownPlatform(f"no platform with component appid {component_appid!r} is served here")
    if not platform.is_active:
        raise PlatformRetired(f"platform {component_appid} was retired: it is no longer served here")
    return platform


def platforms_active() -> list[Platform]:
    """Every platform served, the default first (the periodic jobs go through them one by one)."""
    platform_default()
    return list(Platform.objects.filter(status=PlatformStatus.ACTIVE).order_by("-is_default", "name"))


def platform_secrets(platform: Platform | None = None) -> PlatformSecrets:
    """The credentials of a platform: the settings' for the environment's, decrypted otherwise."""
    if platform is None or platform.from_environment:
        return PlatformSecrets(
            component_appid=settings.WECHAT_COMPONENT_APPID,
            appsecret=settings.WECHAT_COMPONENT_APPSECRET,
            token=settings.WECHAT_COMPONENT_TOKEN,
            aes_key=settings.WECHAT_COMPONENT_AES_KEY,
            previous_aes_keys=tuple(settings.WECHAT_COMPONENT_PREVIOUS_AES_KEYS),
        )
    appid = platform.component_appid

    def read(field: str) -> str:
        stored = getattr(platform, f"{field}_ciphertext")
        return fieldcrypto.decrypt(stored, context=platform_ctx(appid, field)) if stored else ""

    previous = read("previous_aes_key")
    return PlatformSecrets(
        component_appid=appid,
        appsecret=read("appsecret"),
        token=read("token"),
        aes_key=read("aes_key"),
        previous_aes_keys=(previous,) if previous else (),
    )


class UnknownAuthorization(DomainError):
    code = "unknown_authorizer"
    status = 404


def authorization_find(*, appid: str, component_appid: str | None = None) -> Authorizer:
    """The authorization of the account ``appid``: of the platform named, or its only one.

    What a command naming a merchant by appid needs: a single-platform deployment names the appid
    alone, as it always did; an account that authorized several platforms must name one.
    """
    rows = Authorizer.objects.select_related("platform").filter(appid=appid)
    if component_appid:
        rows = rows.filter(platform__component_appid=component_appid)
    found = list(rows[:20])
    if not found:
        where = f" on platform {component_appid}" if component_appid else ""
        raise UnknownAuthorization(f"no authorizer with appid {appid!r}{where}")
    if len(found) > 1:
        platforms = ", ".join(sorted(a.platform.component_appid for a in found))
        raise UnknownAuthorization(
            f"{appid} authorized several platforms ({platforms}): name one with --platform", status=400
        )
    return found[0]


# --- writing -----------------------------------------------------------------------------------


def platform_check(
    *,
    name: str | None = None,
    component_appid: str | None = None,
    appsecret: str | None = None,
    token: str | None = None,
    aes_key: str | None = None,
) -> None:
    """Raise PlatformError (naming the field) for a value a platform cannot have; None: not checked.
    The console's forms ask this before saving, so their errors sit beside the field."""
    if name is not None and not 0 < len(name.strip()) <= NAME_MAX:
        raise PlatformError(f"name must be 1 to {NAME_MAX} characters", field="name")
    if component_appid is not None:
        if not COMPONENT_APPID_RE.fullmatch(component_appid):
            raise PlatformError(
                "component_appid must be an appid: wx followed by 16 letters or digits", field="component_appid"
            )
        if component_appid == settings.WECHAT_COMPONENT_APPID:
            raise PlatformError(
                "this is the default platform, configured by WECHAT_COMPONENT_APPID and its secrets in the environment",
                field="component_appid",
            )
        if Platform.objects.filter(component_appid=component_appid).exists():
            raise PlatformError("a platform with this component appid exists already", field="component_appid")
    if appsecret is not None and not APPSECRET_RE.fullmatch(appsecret):
        raise PlatformError("appsecret must be the platform's AppSecret: 16 to 64 letters or digits", field="appsecret")
    if token is not None and not TOKEN_RE.fullmatch(token):
        raise PlatformError("token must be the message token: 3 to 32 letters or digits", field="token")
    if aes_key is not None and not AES_KEY_RE.fullmatch(aes_key):
        raise PlatformError("aes_key must be an EncodingAESKey: 43 letters or digits", field="aes_key")


def _seal(platform: Platform, field: str, value: str) -> None:
    setattr(
        platform,
        f"{field}_ciphertext",
        fieldcrypto.encrypt(value, context=platform_ctx(platform.component_appid, field)) if value else "",
    )


def platform_add(
    *, name: str, component_appid: str, appsecret: str, token: str, aes_key: str, actor: Actor
) -> Platform:
    """Serve one more platform. Its pushes go to /wechat/platforms/<component_appid>/events/."""
    component_appid = component_appid.strip()
    platform_check(name=name, component_appid=component_appid, appsecret=appsecret, token=token, aes_key=aes_key)
    platform = Platform(name=name.strip(), component_appid=component_appid)
    for field, value in (("appsecret", appsecret), ("token", token), ("aes_key", aes_key)):
        _seal(platform, field, value)
    try:
        with transaction.atomic():
            platform.save()
            audit_record(
                actor=actor,
                action=AuditAction.PLATFORM_ADDED,
                subject=component_appid,
                outcome="ok",
                detail={"name": platform.name},
            )
    except IntegrityError:
        raise PlatformError(
            "a platform with this name or component appid exists already", field="component_appid"
        ) from None
    log.warning("platform %s (%s) added", component_appid, platform.name)
    return platform


def _stored(platform: Platform) -> None:
    if platform.from_environment:
        raise PlatformError(
            "the default platform's credentials come from the environment (WECHAT_COMPONENT_APPSECRET, "
            "WECHAT_COMPONENT_TOKEN, WECHAT_COMPONENT_AES_KEY, WECHAT_COMPONENT_PREVIOUS_AES_KEYS): change them there"
        )


def platform_update(
    *, platform: Platform, actor: Actor, name: str | None = None, appsecret: str | None = None, token: str | None = None
) -> Platform:
    """Rename a platform, or store a reset appsecret or a new message token (None: unchanged)."""
    if appsecret or token:
        _stored(platform)
    platform_check(name=name, appsecret=appsecret or None, token=token or None)
    changed = []
    with transaction.atomic():
        locked = Platform.objects.select_for_update().get(pk=platform.pk)
        if name is not None and name.strip() != locked.name:
            locked.name = name.strip()
            changed.append("name")
        for field, value in (("appsecret", appsecret), ("token", token)):
            if value:
                _seal(locked, field, value)
                changed.append(field)
        if not changed:
            return locked
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise PlatformError("a platform with this name exists already", field="name") from None
        audit_record(
            actor=actor,
            action=AuditAction.PLATFORM_UPDATED,
            subject=locked.component_appid,
            outcome="ok",
            detail={"changed": changed},  # which fields, never their values
        )
    return locked


def platform_rotate_key(*, platform: Platform, aes_key: str, actor: Actor) -> Platform:
    """A new EncodingAESKey: the current one becomes the previous one, still read for pushes WeChat
    encrypted before it switched (one rotation at a time: the key before is forgotten)."""
    _stored(platform)
    platform_check(aes_key=aes_key)
    with transaction.atomic():
        locked = Platform.objects.select_for_update().get(pk=platform.pk)
        current = platform_secrets(locked).aes_key
        if aes_key == current:
            raise PlatformError("this is the current EncodingAESKey already", field="aes_key")
        _seal(locked, "previous_aes_key", current)
        _seal(locked, "aes_key", aes_key)
        locked.key_rotated_at = timezone.now()
        locked.save(update_fields=["aes_key_ciphertext", "previous_aes_key_ciphertext", "key_rotated_at", "updated_at"])
        audit_record(actor=actor, action=AuditAction.PLATFORM_KEY_ROTATED, subject=locked.component_appid, outcome="ok")
    log.warning("platform %s: EncodingAESKey rotated (the previous one is still read)", locked.component_appid)
    return locked


def platform_forget_previous_key(*, platform: Platform, actor: Actor) -> bool:
    """WeChat encrypts with the new key only: stop reading pushes under the previous one."""
    _stored(platform)
    changed = (
        Platform.objects.filter(pk=platform.pk)
        .exclude(previous_aes_key_ciphertext="")
        .update(previous_aes_key_ciphertext="", updated_at=timezone.now())
    )
    if changed:
        audit_record(
            actor=actor,
            action=AuditAction.PLATFORM_KEY_ROTATED,
            subject=platform.component_appid,
            outcome="previous_forgotten",
        )
    return bool(changed)


@dataclass(frozen=True, slots=True)
class RetireResult:
    changed: bool
    merchants_deactivated: int


def platform_retire(*, platform: Platform, actor: Actor) -> RetireResult:
    """Stop serving a platform: its URLs refuse pushes and the authorization flow from now on, and
    each of its merchants is deactivated the one way staff deactivate one (tokens forgotten, API keys
    revoked, pending deletions cancelled; the history stays). The default platform is the
    environment's: remove it there instead."""
    from authorizers.deactivation import authorizer_deactivate  # deactivation builds on this app's services

    if platform.from_environment:
        raise PlatformError(
            "the default platform is configured in the environment (WECHAT_COMPONENT_APPID): it cannot be retired"
        )
    changed = bool(
        Platform.objects.filter(pk=platform.pk, status=PlatformStatus.ACTIVE).update(
            status=PlatformStatus.RETIRED, retired_at=timezone.now(), updated_at=timezone.now()
        )
    )
    deactivated = 0
    # After the status change: no new authorization of this platform can arrive meanwhile.
    for authorizer in platform.authorizers.exclude(status="deactivated").iterator(chunk_size=500):
        deactivated += authorizer_deactivate(authorizer=authorizer, actor=actor).changed
    if changed:
        audit_record(
            actor=actor,
            action=AuditAction.PLATFORM_RETIRED,
            subject=platform.component_appid,
            outcome="ok",
            detail={"merchants_deactivated": deactivated},
        )
        log.warning("platform %s retired: %d merchants deactivated", platform.component_appid, deactivated)
    return RetireResult(changed=changed, merchants_deactivated=deactivated)
