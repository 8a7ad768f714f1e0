"""Webhook deliveries run on their own queue (``webhooks``): a slow receiver never delays a deletion."""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task

from webhooks import services


def dispatch_deliveries(ids: Sequence[int]) -> None:
    for delivery_id in ids:
        deliver_webhook.apply_async((delivery_id,))


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    outcome = services.webhook_delivery_attempt(delivery_id=delivery_id, policy=services.delivery_policy())
    if outcome.countdown is not None:
        deliver_webhook.apply_async((delivery_id,), countdown=outcome.countdown)


@shared_task(ignore_result=True)
def sweep_webhook_deliveries() -> None:
    services.webhook_deliveries_sweep()
