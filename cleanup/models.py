"""Cleanup rules (what to delete, when) and their runs (what each did and why).

Rules and runs are never hard-deleted: a rule is archived, a run is history.
"""

from __future__ import annotations

from contextlib import suppress

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import PeriodicTask

from authorizers.models import Authorizer
from cleanup.validators import (
    MinIntervalValidator,
    crontab_normalise,
    validate_crontab,
    validate_invite_statuses,
    validate_timezone,
)
from dbkit.leases import LeaseQuerySet
from kfaccounts.models import DeletionRequest

# The highest per-rule account limit staff may set (merchants only lower the platform's default).
MAX_LIMIT_ACCOUNTS = 10_000


# The code of clean()'s "a rule selects something" error, which names no single field.
NO_SELECTOR = "no_selector"


class RuleMode(models.TextChoices):
    DRY_RUN = "dry_run", _("Dry run: preview only, never deletes")
    DELETE = "delete", _("Delete")


class Combine(models.TextChoices):
    ALL = "all", _("All configured selectors match")
    ANY = "any", _("Any configured selector matches")


class PatternKind(models.TextChoices):
    GLOB = "glob", _("Glob (*, ?, [abc])")
    REGEX = "regex", _("Regular expression (whole name)")


class ScheduleKind(models.TextChoices):
    INTERVAL = "interval", _("Every N seconds")
    CRONTAB = "crontab", _("Crontab")


class InviteStatus(models.TextChoices):
    EXPIRED = "expired", _("Expired")
    REJECTED = "rejected", _("Rejected")


class CleanupRule(models.Model):
    name = models.CharField(max_length=100, verbose_name=_("name"))
    # None: the rule applies to every active merchant (staff only).
    authorizer = models.ForeignKey(
        Authorizer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="cleanup_rules",
        verbose_name=_("merchant"),
    )
    mode = models.CharField(max_length=16, choices=RuleMode.choices, default=RuleMode.DRY_RUN, verbose_name=_("mode"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    combine = models.CharField(
        max_length=8, choices=Combine.choices, default=Combine.ALL, verbose_name=_("combine selectors")
    )
    # Selectors: an unset selector takes no part; at least one must be set.
    pattern = models.CharField(
        max_length=200, blank=True, help_text=_("matched against the whole kf_account"), verbose_name=_("name pattern")
    )  # checked under its pattern_kind by clean()
    pattern_kind = models.CharField(
        max_length=8, choices=PatternKind.choices, default=PatternKind.GLOB, verbose_name=_("pattern kind")
    )
    invite_statuses = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_invite_statuses],
        help_text=_('subset of ["expired", "rejected"]'),
        verbose_name=_("invite statuses"),
    )
    unbound_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("not bound to a WeChat id for more than this many days"),
        verbose_name=_("unbound for more than (days)"),
    )
    use_list = models.BooleanField(
        default=False, help_text=_("accounts listed for deletion on a date (due today)"), verbose_name=_("use list")
    )
    # Blast radius; None takes CLEANUP_MAX_ACCOUNTS / CLEANUP_MAX_PERCENT.
    max_accounts = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LIMIT_ACCOUNTS)],
        verbose_name=_("at most (accounts)"),
    )
    max_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        verbose_name=_("at most (percent of accounts)"),
    )
    schedule_kind = models.CharField(
        max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.CRONTAB, verbose_name=_("schedule kind")
    )
    interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinIntervalValidator(), MaxValueValidator(366 * 86400)],
        verbose_name=_("interval (seconds)"),
    )
    crontab = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_crontab],
        help_text=_("minute hour day-of-month month day-of-week"),
        verbose_name=_("crontab"),
    )
    timezone = models.CharField(
        max_length=64, default="Asia/Shanghai", validators=[validate_timezone], verbose_name=_("time zone")
    )
    periodic_task = models.OneToOneField(
        PeriodicTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cleanup_rule",
        verbose_name=_("periodic task"),
    )
    created_by_kind = models.CharField(max_length=16, blank=True, verbose_name=_("created by (kind)"))
    created_by_label = models.CharField(max_length=150, blank=True, verbose_name=_("created by"))
    # Who raised a limit above the platform's default (staff only; audited cleanup_rule.limits_raised).
    # A limit above the default without it (a merchant's, from before limits were staff policy) is
    # not honoured: runs use the default.
    limits_raised_by = models.CharField(max_length=150, blank=True, verbose_name=_("limits raised by"))
    limits_raised_at = models.DateTimeField(null=True, blank=True, verbose_name=_("limits raised at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    archived_at = models.DateTimeField(null=True, blank=True, verbose_name=_("archived at"))

    class Meta:
        verbose_name = _("cleanup rule")
        verbose_name_plural = _("cleanup rules")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def limits_effective(self) -> tuple[int, int]:
        """The blast-radius limits a run uses: the rule's, but never above the platform's defaults
        unless staff raised them."""
        from django.conf import settings

        accounts = self.max_accounts or settings.CLEANUP_MAX_ACCOUNTS
        percent = self.max_percent or settings.CLEANUP_MAX_PERCENT
        if not self.limits_raised_by:
            accounts = min(accounts, settings.CLEANUP_MAX_ACCOUNTS)
            percent = min(percent, settings.CLEANUP_MAX_PERCENT)
        return accounts, percent

    def clean(self) -> None:
        """What the fields mean together; normalises what it accepts (the name trimmed, the crontab
        single-spaced, the invitation statuses sorted, the unused schedule part cleared)."""
        from cleanup import matching  # matching reads this module's choices

        errors: dict[str, ValidationError] = {}
        self.name = (self.name or "").strip()
        if not self.name:
            errors["name"] = ValidationError("a name of 1 to 100 characters is required", code="required")
        if self.pattern:
            try:
                matching.pattern_compile(self.pattern, self.pattern_kind)
            except matching.InvalidPattern as exc:
                errors["pattern"] = ValidationError(str(exc), code="pattern")
        if isinstance(self.invite_statuses, list):
            self.invite_statuses = sorted(set(self.invite_statuses))
        if not (self.pattern or self.invite_statuses or self.unbound_days is not None or self.use_list):
            # Not one field's fault: the service names it "selectors", a form shows it above the fields.
            errors[NON_FIELD_ERRORS] = ValidationError(
                "set at least one of pattern, invite_statuses, unbound_days, use_list (a rule selects something)",
                code=NO_SELECTOR,
            )
        if self.schedule_kind == ScheduleKind.INTERVAL:
            self.crontab = ""
            if self.interval_seconds is None:
                errors["interval_seconds"] = ValidationError("required for an interval schedule", code="required")
        elif self.schedule_kind == ScheduleKind.CRONTAB:
            self.interval_seconds = None
            if not (self.crontab or "").strip():
                errors["crontab"] = ValidationError(
                    "required for a crontab schedule: minute hour day-of-month month day-of-week", code="required"
                )
            else:
                with suppress(ValidationError):  # the field's own validator reports a malformed one
                    self.crontab = crontab_normalise(self.crontab)
        if errors:
            raise ValidationError(errors)


class ListedAccount(models.Model):
    """An account the merchant (or staff) listed for deletion on a date, for a rule with use_list."""

    rule = models.ForeignKey(
        CleanupRule, on_delete=models.CASCADE, related_name="listed_accounts", verbose_name=_("rule")
    )
    kf_account = models.CharField(max_length=64, verbose_name=_("kf account"))
    delete_on = models.DateField(
        help_text=_("due from this date on (the rule's time zone)"), verbose_name=_("delete on")
    )
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    added_at = models.DateTimeField(auto_now_add=True, verbose_name=_("added at"))

    class Meta:
        verbose_name = _("listed account")
        verbose_name_plural = _("listed accounts")
        ordering = ["delete_on", "kf_account"]
        constraints = [models.UniqueConstraint(fields=["rule", "kf_account"], name="listed_account_once_per_rule")]

    def __str__(self) -> str:
        return f"{self.kf_account} on {self.delete_on}"


class RunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    PREVIEWED = "previewed", _("Previewed (dry run)")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval (over the blast-radius limit)")
    APPROVED = "approved", _("Approved (carried out by a follow-up run)")
    DECLINED = "declined", _("Declined by an operator")
    EXECUTING = "executing", _("Deletions in progress")
    FINISHED = "finished", _("Finished")
    REFUSED = "refused", _("Refused (merchant not eligible)")
    FAILED = "failed", _("Failed")


OPEN_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)
FINAL_RUN_STATUSES = (
    RunStatus.PREVIEWED,
    RunStatus.APPROVED,
    RunStatus.DECLINED,
    RunStatus.FINISHED,
    RunStatus.REFUSED,
    RunStatus.FAILED,
)


class CleanupRunQuerySet(LeaseQuerySet["CleanupRun"]):
    """Runs are claimed, leased, renewed and swept through dbkit.leases (pending → running)."""

    waiting, working = RunStatus.PENDING.value, RunStatus.RUNNING.value
    sent_field = None  # no "sent at" column: unsent() reads updated_at


class CleanupRun(models.Model):
    """One execution of a rule for one merchant."""

    rule = models.ForeignKey(CleanupRule, on_delete=models.PROTECT, related_name="runs", verbose_name=_("rule"))
    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, related_name="cleanup_runs", verbose_name=_("merchant")
    )
    dry_run = models.BooleanField(default=False, verbose_name=_("dry run"))
    trigger = models.CharField(
        max_length=16, help_text=_("schedule / api / admin / approval"), verbose_name=_("trigger")
    )
    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING, verbose_name=_("status")
    )
    reason = models.CharField(
        max_length=32, blank=True, help_text=_("machine-readable why it stopped"), verbose_name=_("reason")
    )
    message = models.CharField(max_length=500, blank=True, verbose_name=_("message"))
    requested_by_kind = models.CharField(max_length=16, verbose_name=_("requested by (kind)"))
    requested_by_label = models.CharField(max_length=150, blank=True, verbose_name=_("requested by"))
    # An approval's follow-up run deletes at most what the operator saw and approved.
    approved_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approval_run",
        verbose_name=_("approval of run"),
    )
    decided_by_label = models.CharField(max_length=150, blank=True, verbose_name=_("decided by"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    present_count = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("accounts on WeChat after the sync"), verbose_name=_("accounts present")
    )
    limit_accounts = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("limit (accounts)"))
    limit_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("limit (percent of accounts)")
    )
    matched_count = models.PositiveIntegerField(default=0, verbose_name=_("matched"))
    created_count = models.PositiveIntegerField(default=0, verbose_name=_("deletions created"))
    skipped_count = models.PositiveIntegerField(default=0, verbose_name=_("skipped"))
    succeeded_count = models.PositiveIntegerField(default=0, verbose_name=_("succeeded"))
    failed_count = models.PositiveIntegerField(default=0, verbose_name=_("failed"))
    rejected_count = models.PositiveIntegerField(default=0, verbose_name=_("rejected"))
    cancelled_count = models.PositiveIntegerField(default=0, verbose_name=_("cancelled"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    lease_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("lease expires at"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    objects = CleanupRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("cleanup run")
        verbose_name_plural = _("cleanup runs")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="cleanup_run_by_status"),
            models.Index(fields=["authorizer", "-id"], name="cleanup_run_by_authorizer"),
        ]
        constraints = [
            # One open run per rule and merchant: a second request is refused (409), so a costly
            # rule cannot be queued many times over.
            models.UniqueConstraint(
                fields=["rule", "authorizer"],
                condition=models.Q(status__in=["pending", "running"]),
                name="one_open_cleanup_run_per_rule_and_merchant",
            )
        ]

    def __str__(self) -> str:
        return gettext("run #%(id)s of %(rule)s for %(merchant)s: %(status)s") % {
            "id": self.pk,
            "rule": self.rule.name,
            "merchant": self.authorizer.appid,
            "status": self.get_status_display(),
        }


class ItemAction(models.TextChoices):
    DELETE = "delete", _("Delete")
    SKIP = "skip", _("Skip")


class SkipReason(models.TextChoices):
    NOT_PRESENT = "not_present", _("Listed, but not on WeChat's list")
    DELETION_ACTIVE = "deletion_active", _("A deletion is already pending or running")
    NOT_APPROVED = "not_approved", _("Matched now, but not in the list the operator approved")
    INVALID_KF_ACCOUNT = "invalid_kf_account", _("Not a valid kf_account")


class RunItem(models.Model):
    """One account a run considered: to delete (and the deletion it created) or skipped, and why."""

    run = models.ForeignKey(CleanupRun, on_delete=models.CASCADE, related_name="items", verbose_name=_("run"))
    kf_account = models.CharField(max_length=64, verbose_name=_("kf account"))
    action = models.CharField(max_length=8, choices=ItemAction.choices, verbose_name=_("action"))
    matched_by = models.JSONField(
        default=list, blank=True, help_text=_("why the rule selected it"), verbose_name=_("matched by")
    )
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True, verbose_name=_("skip reason"))
    deletion = models.ForeignKey(
        DeletionRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("deletion")
    )

    class Meta:
        verbose_name = _("account of a run")
        verbose_name_plural = _("accounts of runs")
        ordering = ["run", "action", "kf_account"]

    def __str__(self) -> str:
        return f"{self.kf_account}: {self.get_action_display()}"
