from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff user")
    API_KEY = "api_key", _("API key")
    SCHEDULE = "schedule", _("Schedule")
    SYSTEM = "system", _("System")
    WECHAT = "wechat", _("WeChat push")


class AuditEvent(models.Model):
    """One append-only line: who did what to which authorizer, and how it ended.

    Never holds a token or key: `detail` is built by services from non-secret fields only.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    # The appid rather than a foreign key: the log must outlive and never block deletion of rows.
    authorizer_appid = models.CharField(max_length=32, blank=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    errcode = models.IntegerField(null=True, blank=True)
    errmsg = models.CharField(max_length=255, blank=True)
    rid = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["authorizer_appid", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_kind}:{self.actor_label} {self.action} {self.subject} {self.outcome}"
