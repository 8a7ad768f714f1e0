"""Merchant webhook endpoints, the events sent to them, and every attempt to deliver one.

Endpoints are never deleted (a merchant's "delete" disables it), so the delivery log outlives them.
The signing secret is stored only encrypted (authorizers.fieldcrypto) and shown once.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from authorizers.models import Authorizer


class EventType(models.TextChoices):
    DELETION_FINISHED = "deletion.finished", _("A deletion reached a final state")
    RUN_FINISHED = "cleanup_run.finished", _("A cleanup rule's run finished")
    RUN_AWAITING_APPROVAL = "cleanup_run.awaiting_approval", _("A cleanup run stopped at its blast-radius limit")
    PING = "ping", _("A test event sent on request")


class WebhookEndpoint(models.Model):
    authorizer = models.ForeignKey(Authorizer, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types this endpoint receives; empty means every type.
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    secret_ciphertext = models.TextField()
    # After a rotation the previous secret still signs (a second signature) until it expires, so a
    # receiver can switch without losing events.
    previous_secret_ciphertext = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["authorizer", "is_active"], name="webhook_endpoint_active")]

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


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row its task is sent from, and its delivery log."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    event_type = models.CharField(max_length=48, choices=EventType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_by_endpoint"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} → endpoint {self.endpoint_id} {self.status}"


class WebhookAttempt(models.Model):
    """One POST to the receiver (or one refusal to send it), as it happened."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
