"""The platforms served, the merchants who authorized them, and each platform's own credentials.

Secrets are stored only as ciphertext (see fieldcrypto.py). platforms.py (a platform's secret, token
and AES keys), tokens.py (tickets, tokens), services.py (a push's authorization code) and rotation.py
(re-encryption) decrypt them; API keys are kept only as a SHA-256 digest (api_keys.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    SUBSCRIPTION = "subscription", _("Official Account (subscription)")
    SERVICE = "service", _("Service Account")
    MINI_PROGRAM = "mini_program", _("Mini Program")
    MINI_GAME = "mini_game", _("Mini Game")
    UNKNOWN = "unknown", _("Unknown")


class AuthorizerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    REVOKED = "revoked", _("Revoked")
    # Staff stopped serving it (the console's replacement for deleting a merchant): its history stays,
    # its tokens and API keys are gone; authorizing again through the flow makes it active.
    DEACTIVATED = "deactivated", _("Deactivated")


class PlatformStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    # No longer served: its URLs refuse pushes and flows, its merchants were deactivated. The row and
    # its history stay (a platform is never deleted).
    RETIRED = "retired", _("Retired")


class Platform(models.Model):
    """A WeChat third-party platform (开放平台 第三方平台) this deployment serves (issue 19).

    The platform configured in the environment (WECHAT_COMPONENT_APPID and its secrets) is the
    default one: its row holds no secret, they are read from the settings, so a single-platform
    deployment configures exactly what it did before platforms existed. Every other platform keeps
    its secret, message token and AES keys here, encrypted (authorizers/platforms.py), entered once
    (``manage.py platform_add`` or the console) and never shown again.
    """

    name = models.CharField(max_length=64, unique=True, verbose_name=_("name"))
    component_appid = models.CharField(max_length=32, unique=True, verbose_name=_("component appid"))
    # Kept by platforms.platform_default(): true on the row of WECHAT_COMPONENT_APPID only.
    is_default = models.BooleanField(default=False, verbose_name=_("default (from the environment)"))
    status = models.CharField(
        max_length=16, choices=PlatformStatus.choices, default=PlatformStatus.ACTIVE, verbose_name=_("status")
    )
    appsecret_ciphertext = models.TextField(blank=True, verbose_name=_("appsecret (encrypted)"))
    token_ciphertext = models.TextField(blank=True, verbose_name=_("message token (encrypted)"))
    aes_key_ciphertext = models.TextField(blank=True, verbose_name=_("EncodingAESKey (encrypted)"))
    # The key replaced by the last rotation: pushes WeChat still encrypts with it are read.
    previous_aes_key_ciphertext = models.TextField(blank=True, verbose_name=_("previous EncodingAESKey (encrypted)"))
    key_rotated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("AES key rotated at"))
    retired_at = models.DateTimeField(null=True, blank=True, verbose_name=_("retired at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("platform")
        verbose_name_plural = _("platforms")
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_platform")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.component_appid})"

    @property
    def is_active(self) -> bool:
        return self.status == PlatformStatus.ACTIVE

    @property
    def from_environment(self) -> bool:
        """Its credentials are the settings' (WECHAT_COMPONENT_*), not stored here."""
        return self.component_appid == settings.WECHAT_COMPONENT_APPID


def default_platform_id() -> int:
    """The platform of a row made without naming one (everything a single-platform deployment
    makes): the environment's."""
    from authorizers.platforms import platform_default  # the service reads this module's models

    return platform_default().pk


def default_component_appid() -> str:
    """The component appid of a row about a platform that names none: the environment's."""
    return str(settings.WECHAT_COMPONENT_APPID)


class OfDefaultPlatform(models.Model):
    """A row with a ``platform`` that, when none is named, is the default platform.

    Filled on save (and by ``bulk_create`` of the querysets below), not as the field's default:
    a default runs when an object is merely built, and building one must not need the database.
    """

    platform_id: int | None

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.platform_id is None:
            self.platform_id = default_platform_id()
        super().save(*args, **kwargs)


class DefaultPlatformQuerySet(models.QuerySet[Any]):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        if any(obj.platform_id is None for obj in objs):
            default = default_platform_id()
            for obj in objs:
                obj.platform_id = obj.platform_id or default
        return super().bulk_create(objs, *args, **kwargs)


class ComponentCredential(models.Model):
    """The platform's newest verify ticket and its component access token: one row per component appid.

    The row is also the fence for refreshing the component token: whoever holds its lock refreshes.
    """

    component_appid = models.CharField(max_length=32, unique=True, verbose_name=_("component appid"))
    verify_ticket_ciphertext = models.TextField(blank=True, verbose_name=_("verify ticket (encrypted)"))
    ticket_created_at = models.DateTimeField(
        null=True, blank=True, help_text=_("CreateTime of the push"), verbose_name=_("ticket created at")
    )
    ticket_received_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ticket received at"))
    access_token_ciphertext = models.TextField(blank=True, verbose_name=_("access token (encrypted)"))
    access_token_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("access token expires at"))
    access_token_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("access token refreshed at"))
    refresh_count = models.PositiveIntegerField(default=0, verbose_name=_("refresh count"))
    # 61005/61006: when api_start_push_ticket was last called, so a burst of failures asks once.
    push_restart_requested_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("ticket push restart asked at")
    )

    class Meta:
        verbose_name = _("platform credential")
        verbose_name_plural = _("platform credentials")

    def __str__(self) -> str:
        return self.component_appid


# WeChat certification (仅认证): 0 WeChat-verified, 3/4/5 qualification-verified. -1 is uncertified and
# 1/2 are Weibo-only verifications, which are not WeChat certification (docs/wechat.md §5).
CERTIFIED_VERIFY_TYPE_IDS = frozenset({0, 3, 4, 5})


class AuthorizerQuerySet(DefaultPlatformQuerySet):
    """Eligibility in SQL, the same rules as ``authorizers.policy.eligibility`` (tested to agree)."""

    def eligible(self) -> AuthorizerQuerySet:
        from authorizers.policy import eligible_q  # the policy reads this module's models

        return self.filter(eligible_q())

    def not_eligible(self) -> AuthorizerQuerySet:
        from authorizers.policy import eligible_q

        return self.exclude(eligible_q())


class Authorizer(OfDefaultPlatform):
    """One authorization: a WeChat account (``appid``) that authorized one platform. An account that
    authorized two platforms is two rows, each with its own tokens, permission sets, kf mirror, API
    keys, cleanup rules and webhooks."""

    # No index of its own: (appid, platform) is the unique, indexed pair, and a platform's merchants
    # are read in the console's order or all together (reconciliation), never looked up by platform alone.
    platform = models.ForeignKey(
        Platform,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="authorizers",
        verbose_name=_("platform"),
    )
    # Unique with the platform (Meta): the same account may authorize several platforms.
    appid = models.CharField(max_length=32, verbose_name=_("appid"))
    nickname = models.CharField(max_length=128, blank=True, verbose_name=_("nickname"))
    user_name = models.CharField(
        max_length=64, blank=True, help_text=_("Original id (gh_…)"), verbose_name=_("original id")
    )
    alias = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("WeChat id: the part after @ in kf accounts"),
        verbose_name=_("WeChat id (alias)"),
    )
    principal_name = models.CharField(max_length=128, blank=True, verbose_name=_("principal name"))
    kind = models.CharField(
        max_length=16, choices=AccountKind.choices, default=AccountKind.UNKNOWN, verbose_name=_("kind")
    )
    service_type_id = models.IntegerField(null=True, blank=True, verbose_name=_("service type id"))
    verify_type_id = models.IntegerField(
        null=True, blank=True, help_text=_("-1 means not certified"), verbose_name=_("verify type id")
    )
    account_status = models.IntegerField(
        null=True, blank=True, help_text=_("1 means normal"), verbose_name=_("account status")
    )
    func_ids = models.JSONField(
        default=list, blank=True, help_text=_("Granted permission-set ids"), verbose_name=_("permission sets")
    )
    status = models.CharField(
        max_length=16, choices=AuthorizerStatus.choices, default=AuthorizerStatus.ACTIVE, verbose_name=_("status")
    )
    authorized_at = models.DateTimeField(null=True, blank=True, verbose_name=_("authorized at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("authorization revoked at"))
    info_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("info re-read at"))
    # When the paced periodic jobs last took this merchant (dbkit/pacing.py): oldest goes first.
    info_reread_planned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("info re-read planned at"))
    kf_resync_planned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("kf re-sync planned at"))
    # CreateTime of the newest authorization push applied, so a late duplicate cannot undo a newer one.
    last_event_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last push applied at"))

    refresh_token_ciphertext = models.TextField(blank=True, verbose_name=_("refresh token (encrypted)"))
    access_token_ciphertext = models.TextField(blank=True, verbose_name=_("access token (encrypted)"))
    access_token_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("access token expires at"))
    access_token_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("access token refreshed at"))
    token_refresh_count = models.PositiveIntegerField(default=0, verbose_name=_("token refreshes"))

    # 45009: the authorizer spent its daily quota; no calls for it until then.
    quota_paused_until = models.DateTimeField(null=True, blank=True, verbose_name=_("quota paused until"))
    # A kf-account sync was queued and has not started yet: further requests join it.
    kf_sync_queued_at = models.DateTimeField(null=True, blank=True, verbose_name=_("kf sync queued at"))
    # Outbound calls per second on each kf API, across every worker (authorizers/ratelimit.py).
    rate_limit_per_second = models.FloatField(
        null=True,
        blank=True,
        help_text=_("calls/s on each kf API; empty: the global WECHAT_RATE_LIMIT_PER_SECOND"),
        verbose_name=_("rate limit (calls/s)"),
    )
    learned_rate_limit = models.FloatField(
        null=True,
        blank=True,
        help_text=_("lowered automatically when WeChat says 45011; clear it to forget"),
        verbose_name=_("learned rate limit (calls/s)"),
    )
    # What openapi/quota/get says of kfaccount/del (docs/wechat.md §12): the pace WeChat allows a
    # platform for this account, re-read daily; empty when WeChat reported no rate limit.
    quota_rate_limit = models.FloatField(
        null=True,
        blank=True,
        help_text=_("the pace WeChat reports for this account (openapi/quota/get), re-read daily"),
        verbose_name=_("WeChat's rate limit (calls/s)"),
    )
    quota_checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("quota read at"))

    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    objects = AuthorizerQuerySet.as_manager()

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        # What the console's actions on a merchant need (change_authorizer would say "edit its record",
        # which nobody does: merchants change through WeChat's pushes and these actions only).
        permissions = [("operate_authorizer", _("Can refresh tokens, re-read, sync and deactivate merchants"))]
        ordering = ["nickname", "appid"]
        # The paced jobs' "oldest first" order, read a slice at a time (dbkit/pacing.py).
        indexes = [
            models.Index(F("info_reread_planned_at").asc(nulls_first=True), "id", name="authorizer_reread_order"),
            models.Index(F("kf_resync_planned_at").asc(nulls_first=True), "id", name="authorizer_resync_order"),
        ]
        # One authorization per account and platform. appid first: the index also serves every
        # look-up by appid alone (the console's search, an alert's merchant).
        constraints = [models.UniqueConstraint(fields=["appid", "platform"], name="authorizer_one_per_platform")]

    def __str__(self) -> str:
        return f"{self.nickname or '?'} ({self.appid})"

    @property
    def is_active(self) -> bool:
        return self.status == AuthorizerStatus.ACTIVE

    @property
    def is_certified(self) -> bool:
        return self.verify_type_id in CERTIFIED_VERIFY_TYPE_IDS

    def quota_paused(self, now: datetime | None = None) -> bool:
        return self.quota_paused_until is not None and self.quota_paused_until > (now or timezone.now())


class ComponentEvent(OfDefaultPlatform):
    """Every accepted push on the events URL, once: WeChat retries, and a retry must not act twice."""

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored (stale or duplicate)")
        FAILED = "failed", _("Failed")

    # Which platform's events URL it arrived on. No index: the pushes are read newest first.
    platform = models.ForeignKey(
        Platform,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="events",
        verbose_name=_("platform"),
    )
    dedupe_key = models.CharField(max_length=64, unique=True, verbose_name=_("de-duplication key"))
    info_type = models.CharField(max_length=48, db_index=True, verbose_name=_("info type"))
    authorizer_appid = models.CharField(max_length=32, blank=True, db_index=True, verbose_name=_("merchant appid"))
    create_time = models.DateTimeField(verbose_name=_("pushed at (CreateTime)"))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED, verbose_name=_("state"))
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))
    error = models.CharField(max_length=255, blank=True, verbose_name=_("error"))
    # Non-secret fields only: the ticket and the authorization code never land here.
    fields = models.JSONField(default=dict, blank=True, verbose_name=_("fields"))
    authorization_code_ciphertext = models.TextField(blank=True, verbose_name=_("authorization code (encrypted)"))

    class Meta:
        verbose_name = _("WeChat push")
        verbose_name_plural = _("WeChat pushes")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.info_type} {self.authorizer_appid} @ {timezone.localtime(self.create_time):%Y-%m-%d %H:%M:%S}"


class ApiKey(models.Model):
    """A merchant's API key: shown once, stored as a SHA-256 digest, bound to one authorizer."""

    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("merchant")
    )
    name = models.CharField(max_length=64, blank=True, verbose_name=_("name"))
    prefix = models.CharField(max_length=16, unique=True, verbose_name=_("prefix"))
    digest = models.CharField(max_length=64, verbose_name=_("digest"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        # Superusers only (console/roles.py): an issued key is a merchant's whole API access.
        permissions = [("manage_apikey", _("Can issue and revoke merchants' API keys"))]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.authorizer.appid})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuthorizationCodeExchange(models.Model):
    """One row per authorization code: WeChat honours a code once, so exactly one path exchanges it.

    The browser's return and the ``authorized`` push carry the same code; whichever inserts this
    row first calls api_query_auth, the other reads the result from here. Only a SHA-256 of the
    code is kept.
    """

    class State(models.TextChoices):
        EXCHANGING = "exchanging", _("Exchanging")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    code_sha256 = models.CharField(max_length=64, unique=True, verbose_name=_("code (SHA-256)"))
    state = models.CharField(max_length=16, choices=State.choices, default=State.EXCHANGING, verbose_name=_("state"))
    authorizer = models.ForeignKey(
        Authorizer, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("merchant")
    )
    errcode = models.IntegerField(null=True, blank=True, verbose_name=_("errcode"))
    errmsg = models.CharField(max_length=255, blank=True, verbose_name=_("errmsg"))
    # A claim older than this is presumed dead (its process crashed) and may be taken over.
    lease_expires_at = models.DateTimeField(verbose_name=_("lease expires at"))
    # When the browser callback presented this code: a second presentation is a replay.
    callback_seen_at = models.DateTimeField(null=True, blank=True, verbose_name=_("callback seen at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("authorization code exchange")
        verbose_name_plural = _("authorization code exchanges")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"code {self.code_sha256[:12]}… {self.state}"


class AuthorizationStateUse(models.Model):
    """A signed ``state`` of the authorization redirect, once used: a second use is refused."""

    nonce = models.CharField(max_length=64, unique=True, verbose_name=_("nonce"))
    used_at = models.DateTimeField(auto_now_add=True, verbose_name=_("used at"))

    class Meta:
        verbose_name = _("used authorization state")
        verbose_name_plural = _("used authorization states")

    def __str__(self) -> str:
        return self.nonce


class PlatformAlert(models.Model):
    """Something a person must look at: a problem of the platform itself (61004: our IP is not
    whitelisted; no verify ticket) or of one merchant (WeChat no longer lists it, or lists one we do
    not know). The one alert table: raised and cleared only through authorizers/alerts.py.

    At most one open alert per code and merchant; while a blocking platform alert is open,
    deletions are held instead of failed.
    """

    class Code(models.TextChoices):
        # Platform-wide; the ones in alerts.PLATFORM_HOLD_CODES hold every deletion while open.
        IP_NOT_WHITELISTED = "ip_not_whitelisted", _("Caller IP not on the platform's whitelist (61004)")
        VERIFY_TICKET_STALE = "verify_ticket_stale", _("No component_verify_ticket from WeChat (pushes stopped)")
        VERIFY_TICKET_MISSING = "verify_ticket_missing", _("No usable component_verify_ticket yet")
        COMPONENT_TICKET_INVALID = "component_ticket_invalid", _("WeChat refused the verify ticket (61005/61006)")
        COMPONENT_INVALID = "component_invalid", _("The platform's appid or appsecret is wrong (61011/40125/41004)")
        WRONG_TOKEN_KIND = "wrong_token_kind", _("WeChat refused the kind of token sent (61014/61015/61024)")
        PLATFORM_QUOTA_EXCEEDED = "platform_quota_exceeded", _("The platform's own daily quota is spent (45009)")
        # Per merchant.
        MERCHANT_GONE = "merchant_gone", _("WeChat no longer lists an active merchant")
        MERCHANT_UNKNOWN = "merchant_unknown", _("WeChat lists a merchant we do not know")
        MERCHANT_IP_NOT_WHITELISTED = "merchant_ip_not_whitelisted", _("Our IP is not on an IP whitelist (40164/40090)")
        API_BANNED = "api_banned", _("WeChat banned the API for this account (48004)")
        ACCOUNT_RESTRICTED = "account_restricted", _("WeChat restricted this account (50002)")
        REFRESH_TOKEN_INVALID = "refresh_token_invalid", _("The refresh token was refused and not recovered (61023)")

    code = models.CharField(max_length=32, choices=Code.choices, verbose_name=_("alert"))
    # The platform it is about (a 61004 on one platform holds nothing of another): a platform-wide
    # alert is that platform's, a merchant's alert is about its authorization of that platform.
    component_appid = models.CharField(
        max_length=32, default=default_component_appid, db_index=True, verbose_name=_("platform")
    )
    # Empty for a platform-wide alert; the merchant's appid otherwise (not a foreign key: WeChat may
    # list a merchant that has no row here).
    authorizer_appid = models.CharField(
        max_length=32, blank=True, default="", db_index=True, verbose_name=_("merchant appid")
    )
    message = models.CharField(max_length=500, blank=True, default="", verbose_name=_("message"))
    errcode = models.IntegerField(null=True, blank=True, verbose_name=_("errcode"))
    errmsg = models.CharField(max_length=255, blank=True, verbose_name=_("errmsg"))
    first_seen_at = models.DateTimeField(auto_now_add=True, verbose_name=_("first seen at"))
    last_seen_at = models.DateTimeField(verbose_name=_("last seen at"))
    occurrences = models.PositiveIntegerField(default=1, verbose_name=_("occurrences"))
    cleared_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cleared at"))
    cleared_by = models.CharField(max_length=150, blank=True, verbose_name=_("cleared by"))

    class Meta:
        verbose_name = _("platform alert")
        verbose_name_plural = _("platform alerts")
        permissions = [("clear_platformalert", _("Can mark alerts as fixed"))]
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "component_appid", "authorizer_appid"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_alert_per_code_platform_and_merchant",
            )
        ]

    def __str__(self) -> str:
        where = f" ({self.authorizer_appid})" if self.authorizer_appid else ""
        since = f"{timezone.localtime(self.first_seen_at):%Y-%m-%d %H:%M:%S}"
        return gettext("%(alert)s%(where)s since %(at)s") % {
            "alert": self.get_code_display(),
            "where": where,
            "at": since,
        }

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    @property
    def of_default_platform(self) -> bool:
        """About the environment's platform (the console names the platform of any other)."""
        return self.component_appid == settings.WECHAT_COMPONENT_APPID

    @property
    def fix(self) -> str:
        """What a person does about it (the cause is the code's label)."""
        return str(ALERT_FIXES.get(self.code, ""))


# The fix for each cause, shown with the alert (docs/wechat.md §11).
ALERT_FIXES: dict[str, Any] = {
    PlatformAlert.Code.IP_NOT_WHITELISTED: _(
        "Deletions are held until it is fixed: add this server's IP to the platform's whitelist in the WeChat "
        "Open Platform console (a whitelist change takes effect for live accounts after 全网发布), then mark "
        "the alert fixed."
    ),
    PlatformAlert.Code.VERIFY_TICKET_STALE: _(
        "Without a fresh verify ticket the component token cannot be renewed: check that WeChat can reach the "
        "events URL and the platform's message settings."
    ),
    PlatformAlert.Code.VERIFY_TICKET_MISSING: _(
        "Deletions are held until WeChat pushes a verify ticket (every 10 minutes; the platform has asked for "
        "one). If none arrives, check that WeChat can reach the events URL and that it answers success."
    ),
    PlatformAlert.Code.COMPONENT_TICKET_INVALID: _(
        "Deletions are held: the platform asked WeChat to push a new ticket (api_start_push_ticket), which can "
        "take 10 minutes; they resume by themselves once it arrives."
    ),
    PlatformAlert.Code.COMPONENT_INVALID: _(
        "Deletions are held: check WECHAT_COMPONENT_APPID and WECHAT_COMPONENT_APPSECRET against the WeChat "
        "Open Platform console (a reset secret must be copied again), then restart."
    ),
    PlatformAlert.Code.WRONG_TOKEN_KIND: _(
        "Deletions are held: a call was made with the wrong kind of token, which is a platform bug or a wrong "
        "setting (WECHAT_API_BASE). Report it with the errmsg and rid."
    ),
    PlatformAlert.Code.PLATFORM_QUOTA_EXCEEDED: _(
        "Deletions are held until the platform's daily quota resets at midnight Beijing time, or reset it in "
        "the WeChat Open Platform console (clear_quota, 10 times a month)."
    ),
    PlatformAlert.Code.MERCHANT_GONE: _("Check with the merchant whether it revoked the authorization."),
    PlatformAlert.Code.MERCHANT_UNKNOWN: _("Ask the merchant to authorize again through the platform's page."),
    PlatformAlert.Code.MERCHANT_IP_NOT_WHITELISTED: _(
        "This merchant's deletions are held: ask the merchant to add the platform's server IPs to its own "
        "account's IP whitelist (or remove the whitelist); they resume by themselves once a call goes through."
    ),
    PlatformAlert.Code.API_BANNED: _(
        "WeChat banned the deletion interface for this account: its deletions failed. The merchant must "
        "settle it with WeChat, then ask for them again."
    ),
    PlatformAlert.Code.ACCOUNT_RESTRICTED: _(
        "WeChat restricted this account: its deletions failed. The merchant must lift the restriction on "
        "WeChat, then ask for them again."
    ),
    PlatformAlert.Code.REFRESH_TOKEN_INVALID: _(
        "This merchant's deletions are held: WeChat refused its refresh token and the current one could not "
        "be read. The nightly reconciliation tries again; if it persists, send the merchant the authorization "
        "link."
    ),
}
