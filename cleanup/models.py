"""Cleanup rules (what to delete, when) and their runs (what each did and why).

Rules and runs are never hard-deleted: a rule is archived, a run is history.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import PeriodicTask

from authorizers.models import Authorizer
from kfaccounts.models import DeletionRequest


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
    name = models.CharField(max_length=100)
    # None: the rule applies to every active merchant (staff only).
    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, null=True, blank=True, related_name="cleanup_rules"
    )
    mode = models.CharField(max_length=16, choices=RuleMode.choices, default=RuleMode.DRY_RUN)
    enabled = models.BooleanField(default=True)
    combine = models.CharField(max_length=8, choices=Combine.choices, default=Combine.ALL)
    # Selectors: an unset selector takes no part; at least one must be set.
    pattern = models.CharField(max_length=200, blank=True, help_text="matched against the whole kf_account")
    pattern_kind = models.CharField(max_length=8, choices=PatternKind.choices, default=PatternKind.GLOB)
    invite_statuses = models.JSONField(default=list, blank=True, help_text='subset of ["expired", "rejected"]')
    unbound_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="not bound to a WeChat id for more than this many days"
    )
    use_list = models.BooleanField(default=False, help_text="accounts listed for deletion on a date (due today)")
    # Blast radius; None takes CLEANUP_MAX_ACCOUNTS / CLEANUP_MAX_PERCENT.
    max_accounts = models.PositiveIntegerField(null=True, blank=True)
    max_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    schedule_kind = models.CharField(max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.CRONTAB)
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    crontab = models.CharField(max_length=100, blank=True, help_text="minute hour day-of-month month day-of-week")
    timezone = models.CharField(max_length=64, default="Asia/Shanghai")
    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="cleanup_rule"
    )
    created_by_kind = models.CharField(max_length=16, blank=True)
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class ListedAccount(models.Model):
    """An account the merchant (or staff) listed for deletion on a date, for a rule with use_list."""

    rule = models.ForeignKey(CleanupRule, on_delete=models.CASCADE, related_name="listed_accounts")
    kf_account = models.CharField(max_length=64)
    delete_on = models.DateField(help_text="due from this date on (the rule's time zone)")
    note = models.CharField(max_length=200, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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


class CleanupRun(models.Model):
    """One execution of a rule for one merchant."""

    rule = models.ForeignKey(CleanupRule, on_delete=models.PROTECT, related_name="runs")
    authorizer = models.ForeignKey(Authorizer, on_delete=models.CASCADE, related_name="cleanup_runs")
    dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=16, help_text="schedule / api / admin / approval")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    reason = models.CharField(max_length=32, blank=True, help_text="machine-readable why it stopped")
    message = models.CharField(max_length=500, blank=True)
    requested_by_kind = models.CharField(max_length=16)
    requested_by_label = models.CharField(max_length=150, blank=True)
    # An approval's follow-up run deletes at most what the operator saw and approved.
    approved_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="approval_run"
    )
    decided_by_label = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    present_count = models.PositiveIntegerField(null=True, blank=True, help_text="accounts on WeChat after the sync")
    limit_accounts = models.PositiveIntegerField(null=True, blank=True)
    limit_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    matched_count = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    succeeded_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    cancelled_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="cleanup_run_by_status"),
            models.Index(fields=["authorizer", "-id"], name="cleanup_run_by_authorizer"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} of {self.rule.name} for {self.authorizer.appid}: {self.status}"


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

    run = models.ForeignKey(CleanupRun, on_delete=models.CASCADE, related_name="items")
    kf_account = models.CharField(max_length=64)
    action = models.CharField(max_length=8, choices=ItemAction.choices)
    matched_by = models.JSONField(default=list, blank=True, help_text="why the rule selected it")
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    deletion = models.ForeignKey(DeletionRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["run", "action", "kf_account"]

    def __str__(self) -> str:
        return f"{self.kf_account}: {self.action}"
