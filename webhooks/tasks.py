"""Webhook deliveries run on their own queue (``webhooks``): a slow receiver never delays a deletion."""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task
from django.conf import settings

from webhooks import services


def retry_policy() -> services.RetryPolicy:
    return services.RetryPolicy(
        base_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS,
        cap_seconds=settings.WEBHOOK_RETRY_CAP_SECONDS,
        window_seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS,
        # The lease outlives the longest attempt (the DNS bound, then the HTTP deadline), so a
        # healthy delivery is never swept to a second worker while its first is still sending.
        lease_seconds=int(settings.WEBHOOK_DNS_TIMEOUT + settings.WEBHOOK_DEADLINE) + 30,
        max_per_endpoint=settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT,
        max_per_merchant=settings.WEBHOOK_MAX_IN_FLIGHT_PER_MERCHANT,
    )


def dispatch_deliveries(ids: Sequence[int]) -> None:
    for delivery_id in ids:
        deliver_webhook.apply_async((delivery_id,))


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    outcome = services.webhook_delivery_attempt(delivery_id=delivery_id, policy=retry_policy())
    if outcome.countdown is not None:
        deliver_webhook.apply_async((delivery_id,), countdown=outcome.countdown)


@shared_task(ignore_result=True)
def sweep_webhook_deliveries() -> None:
    services.webhook_deliveries_sweep(policy=retry_policy())
