"""Merchant webhook endpoints, the events sent to them, and every attempt to deliver one.

Endpoints are never deleted (a merchant's "delete" disables it), so the delivery log outlives them.
The signing secret is stored only encrypted (authorizers.fieldcrypto) and shown once.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authorizers.models import Authorizer
from dbkit.leases import LeaseQuerySet


class EventType(models.TextChoices):
    DELETION_FINISHED = "deletion.finished", _("A deletion reached a final state")
    RUN_FINISHED = "cleanup_run.finished", _("A cleanup rule's run finished")
    RUN_AWAITING_APPROVAL = "cleanup_run.awaiting_approval", _("A cleanup run stopped at its blast-radius limit")
    PING = "ping", _("A test event sent on request")


class WebhookEndpoint(models.Model):
    authorizer = models.ForeignKey(
        Authorizer, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("merchant")
    )
    url = models.URLField(max_length=500, verbose_name=_("URL"))
    description = models.CharField(max_length=200, blank=True, verbose_name=_("description"))
    # Event types this endpoint receives; empty means every type.
    event_types = models.JSONField(default=list, blank=True, verbose_name=_("event types"))
    is_active = models.BooleanField(default=True, verbose_name=_("active"))
    secret_ciphertext = models.TextField(verbose_name=_("secret (encrypted)"))
    # After a rotation the previous secret still signs (a second signature) until it expires, so a
    # receiver can switch without losing events.
    previous_secret_ciphertext = models.TextField(blank=True, verbose_name=_("previous secret (encrypted)"))
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("previous secret expires at")
    )
    secret_rotated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("secret rotated at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    disabled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("disabled at"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-id"]
        indexes = [models.Index(fields=["authorizer", "is_active"], name="webhook_endpoint_active")]
        # Where a merchant's events go and the secret that signs them are as powerful as an API key:
        # registering, redirecting and rotating need this (superusers; not the operator role).
        permissions = [
            ("manage_webhook_endpoints", _("Can register, redirect and rotate the secret of webhook endpoints"))
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"

    def wants(self, event_type: str) -> bool:
        # A ping goes only where it is asked for (webhook_ping), never through a subscription.
        if event_type == EventType.PING:
            return False
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERING = "delivering", _("Delivering")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed (gave up)")


class DeliveryQuerySet(LeaseQuerySet["WebhookDelivery"]):
    """Claim / lease / sweep of deliveries (dbkit.leases): pending → delivering → pending or final."""

    waiting = "pending"
    working = "delivering"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row its task is sent from, and its delivery log."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("endpoint")
    )
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True, verbose_name=_("event id"))
    event_type = models.CharField(max_length=48, choices=EventType.choices, verbose_name=_("event type"))
    payload = models.JSONField(verbose_name=_("payload"))
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    lease_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("lease expires at"))
    dispatched_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent to a worker at"))
    last_status_code = models.IntegerField(null=True, blank=True, verbose_name=_("last HTTP status"))
    last_error = models.CharField(max_length=255, blank=True, verbose_name=_("last error"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    gave_up_at = models.DateTimeField(null=True, blank=True, verbose_name=_("gave up at"))

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_by_endpoint"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} → endpoint {self.endpoint_id} {self.status}"


class WebhookAttempt(models.Model):
    """One POST to the receiver (or one refusal to send it), as it happened."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(verbose_name=_("attempt"))
    at = models.DateTimeField(auto_now_add=True, verbose_name=_("time"))
    status_code = models.IntegerField(null=True, blank=True, verbose_name=_("HTTP status"))
    error = models.CharField(max_length=255, blank=True, verbose_name=_("error"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration (ms)"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return gettext("attempt %(number)s: %(result)s") % {
            "number": self.number,
            "result": self.status_code or self.error,
        }
