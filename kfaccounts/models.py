"""Customer-service accounts (a mirror of getkflist) and the requests to delete them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from authorizers.models import Authorizer
from dbkit.leases import LeaseQuerySet

# The fields copied from one item of getkflist's answer: the sync writes them, the API shows them.
KF_LIST_FIELDS = (
    "kf_id",
    "kf_nick",
    "kf_headimgurl",
    "kf_wx",
    "invite_wx",
    "invite_expire_time",
    "invite_status",
)


class KfAccount(models.Model):
    """What getkflist said last time; ``gone_at`` is set when an account disappears upstream."""

    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, related_name="kf_accounts", verbose_name=_("merchant")
    )
    kf_account = models.CharField(max_length=64, verbose_name=_("kf account"))
    kf_id = models.CharField(max_length=32, blank=True, verbose_name=_("kf id"))
    kf_nick = models.CharField(max_length=64, blank=True, verbose_name=_("nickname"))
    kf_headimgurl = models.URLField(max_length=500, blank=True, verbose_name=_("avatar URL"))
    kf_wx = models.CharField(
        max_length=64, blank=True, help_text=_("bound WeChat id"), verbose_name=_("bound WeChat id")
    )
    invite_wx = models.CharField(max_length=64, blank=True, verbose_name=_("invited WeChat id"))
    invite_expire_time = models.DateTimeField(null=True, blank=True, verbose_name=_("invitation expires at"))
    invite_status = models.CharField(
        max_length=16, blank=True, help_text=_("waiting / rejected / expired"), verbose_name=_("invite status")
    )
    # Since when the account has had no bound WeChat id, as far as the syncs saw (cleanup rules use it).
    unbound_since = models.DateTimeField(null=True, blank=True, verbose_name=_("unbound since"))
    first_seen_at = models.DateTimeField(auto_now_add=True, verbose_name=_("first seen at"))
    last_seen_at = models.DateTimeField(verbose_name=_("last seen at"))
    gone_at = models.DateTimeField(null=True, blank=True, verbose_name=_("gone at"))

    class Meta:
        verbose_name = _("kf account")
        verbose_name_plural = _("kf accounts")
        ordering = ["kf_account"]
        constraints = [
            models.UniqueConstraint(fields=["authorizer", "kf_account"], name="kf_account_unique_per_authorizer"),
        ]
        # The console's list is ordered by account and looks one up across merchants. Substring search
        # is served by trigram indexes on PostgreSQL (migration 0007, not declared here: SQLite has none).
        indexes = [models.Index(fields=["kf_account"], name="kf_account_by_name")]

    def __str__(self) -> str:
        return self.kf_account

    @property
    def is_present(self) -> bool:
        return self.gone_at is None


class DeletionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")
    # A staff member withdrew it while it was still pending; a running attempt cannot be withdrawn.
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (DeletionStatus.PENDING, DeletionStatus.RUNNING)
TERMINAL_STATUSES = (
    DeletionStatus.SUCCEEDED,
    DeletionStatus.FAILED,
    DeletionStatus.REJECTED,
    DeletionStatus.CANCELLED,
)


class DeletionReason(models.TextChoices):
    ALREADY_GONE = "already_gone", _("Already gone (65401 after an attempt whose outcome was unknown)")
    INVALID_KF_ACCOUNT = "invalid_kf_account", _("65401: no such customer-service account")
    KF_NOT_ENABLED = "kf_not_enabled", _("65400: new customer service is not enabled")
    PERMISSION_DENIED = "permission_denied", _("48001/61007: permission not granted")
    AUTHORIZATION_REVOKED = "authorization_revoked", _("61003: authorization revoked")
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", _("WeChat unavailable; retries exhausted")
    WECHAT_ERROR = "wechat_error", _("WeChat refused with another error")
    QUOTA_EXHAUSTED = "quota_exhausted", _("45009: daily quota spent; waiting for the reset")
    RETRY_SCHEDULED = "retry_scheduled", _("A transient error; retry scheduled")
    PLATFORM_HELD = "platform_held", _("Held: the platform itself is blocked (see the platform alert)")
    MINUTE_QUOTA = "minute_quota", _("45011: per-minute limit; retrying in the next minute")
    MERCHANT_HELD = "merchant_held", _("Held: this merchant is blocked (see its alert)")
    API_BANNED = "api_banned", _("48004: WeChat banned the interface for this account")
    ACCOUNT_RESTRICTED = "account_restricted", _("50002: WeChat restricted this account")
    NOT_ELIGIBLE = "not_eligible", _("The merchant may not use this interface")
    INVALID_INPUT = "invalid_input", _("Not a valid kf_account")


class DeletionQuerySet(LeaseQuerySet["DeletionRequest"]):
    """Claim / lease / sweep of deletions (dbkit.leases): ``DeletionRequest.objects.due(now)`` and so on."""

    waiting = "pending"
    working = "running"


class DeletionRequest(models.Model):
    """The intent to delete one kf account, and the outbox its task is sent from.

    pending → running → succeeded | failed | rejected; pending again with ``next_attempt_at`` when a
    retry is scheduled; pending → cancelled when staff withdraw it; failed → pending when staff retry it. At most one pending/running request per (authorizer, kf_account).
    """

    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, related_name="deletions", verbose_name=_("merchant")
    )
    kf_account = models.CharField(max_length=64, verbose_name=_("kf account"))
    status = models.CharField(
        max_length=16, choices=DeletionStatus.choices, default=DeletionStatus.PENDING, verbose_name=_("status")
    )
    reason = models.CharField(max_length=32, choices=DeletionReason.choices, blank=True, verbose_name=_("reason"))
    errcode = models.IntegerField(null=True, blank=True, verbose_name=_("errcode"))
    errmsg = models.CharField(max_length=255, blank=True, verbose_name=_("errmsg"))
    rid = models.CharField(max_length=64, blank=True, verbose_name=_("rid"))
    attempts = models.PositiveIntegerField(default=0, help_text=_("calls made to WeChat"), verbose_name=_("attempts"))
    transient_failures = models.PositiveIntegerField(default=0, verbose_name=_("transient failures"))
    # True once an attempt may have reached WeChat without us learning the answer (timeout, 5xx,
    # a worker killed mid-call): a later 65401 then means the account is already gone.
    outcome_unknown = models.BooleanField(default=False, verbose_name=_("outcome unknown"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    lease_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("lease expires at"))
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text=_("when the task was last sent"), verbose_name=_("sent to a worker at")
    )
    requested_by_kind = models.CharField(max_length=16, verbose_name=_("requested by (kind)"))
    requested_by_id = models.CharField(max_length=64, blank=True, verbose_name=_("requested by (id)"))
    requested_by_label = models.CharField(max_length=150, blank=True, verbose_name=_("requested by"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    objects = DeletionQuerySet.as_manager()

    class Meta:
        verbose_name = _("deletion")
        verbose_name_plural = _("deletions")
        # Requests come from the kf accounts list; retry and cancel act on existing ones. Neither is
        # "add" or "change" of a row in the sense Django's default permissions mean.
        permissions = [
            ("request_deletion", _("Can request deletions of kf accounts on WeChat")),
            ("operate_deletionrequest", _("Can retry failed and cancel pending deletions")),
        ]
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["authorizer", "kf_account"],
                condition=Q(status__in=["pending", "running"]),
                name="one_active_deletion_per_kf_account",
            ),
        ]
        indexes = [
            models.Index(fields=["authorizer", "-id"], name="deletion_by_authorizer"),
            models.Index(fields=["status", "next_attempt_at"], name="deletion_by_status_due"),
            # The claim: one merchant's pending rows in id order, among millions of finished ones.
            # Partial: it holds only the rows still to do (docs/lifecycle.md shows the plan at 2M rows).
            models.Index(fields=["authorizer", "id"], condition=Q(status="pending"), name="deletion_pending_claim"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kf_account} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class IdempotencyRecord(models.Model):
    """POST /api/v1/deletions/ with an Idempotency-Key: the same key and body get the same answer."""

    authorizer = models.ForeignKey(Authorizer, on_delete=models.CASCADE, related_name="+", verbose_name=_("merchant"))
    key = models.CharField(max_length=255, verbose_name=_("key"))
    body_digest = models.CharField(max_length=64, verbose_name=_("body digest"))
    deletion_ids = models.JSONField(default=list, verbose_name=_("deletion ids"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["authorizer", "key"], name="idempotency_key_unique_per_authorizer"),
        ]

    def __str__(self) -> str:
        return f"idempotency key {self.key}"
