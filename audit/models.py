from __future__ import annotations

from django.db import models
from django.utils import timezone
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

    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("time"))
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices, verbose_name=_("actor kind"))
    actor_id = models.CharField(max_length=64, blank=True, verbose_name=_("actor id"))
    actor_label = models.CharField(max_length=150, blank=True, verbose_name=_("actor"))
    # The appid rather than a foreign key: the log must outlive and never block deletion of rows.
    authorizer_appid = models.CharField(max_length=32, blank=True, db_index=True, verbose_name=_("merchant appid"))
    action = models.CharField(max_length=64, db_index=True, verbose_name=_("action"))
    subject = models.CharField(max_length=128, blank=True, verbose_name=_("subject"))
    outcome = models.CharField(max_length=32, blank=True, verbose_name=_("outcome"))
    errcode = models.IntegerField(null=True, blank=True, verbose_name=_("errcode"))
    errmsg = models.CharField(max_length=255, blank=True, verbose_name=_("errmsg"))
    rid = models.CharField(max_length=64, blank=True, verbose_name=_("rid"))
    detail = models.JSONField(default=dict, blank=True, verbose_name=_("detail"))

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["authorizer_appid", "-at"]),
            # The console's outcome filter lists the distinct outcomes by walking this index.
            models.Index(fields=["outcome"], name="audit_by_outcome"),
        ]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.at):%Y-%m-%d %H:%M:%S} {self.actor_kind}:{self.actor_label} {self.action} {self.subject} {self.outcome}"
