"""Every write about merchant webhooks: endpoints, their secrets, events and their delivery.

An event is one ``WebhookDelivery`` row per subscribed endpoint, written when the event happens and
sent to its own Celery queue after commit, so a slow or dead receiver never holds up a deletion.
A delivery is claimed with a conditional UPDATE, attempted once, and either succeeds, is scheduled
again with exponential backoff, or is given up once the retry window (a day) is over.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers import fieldcrypto
from authorizers.models import Authorizer
from dbkit.leases import Lease, Next
from errorkit import DomainError
from webhooks import signing, transport
from webhooks.dispatch import deliveries_send
from webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.urlguard import Policy, UnsafeUrl, url_check
from wechat.retry import Backoff

log = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_MERCHANT = 10
# The previous secret keeps signing (as a second signature) this long after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
SUBSCRIBABLE = tuple(t for t in EventType.values if t != EventType.PING)


class InvalidWebhook(DomainError, ValueError):
    """A registration or change that cannot be accepted; nothing was stored (``fields``: the input at fault)."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How deliveries are tried: the shared primitives (``wechat.retry.Backoff``, ``dbkit.leases.Lease``)
    and what only webhooks have, the retry window and the in-flight caps. ``delivery_policy()`` reads it
    from the settings."""

    backoff: Backoff = field(default_factory=lambda: Backoff(base_seconds=30.0, cap_seconds=3600.0, jitter=0.2))
    lease: Lease = field(default_factory=lambda: Lease(seconds=60))
    window_seconds: float = 86400.0
    # In-flight caps: deliveries being sent at once to one endpoint / to one merchant's endpoints.
    max_per_endpoint: int = 4
    max_per_merchant: int = 8
    # A delivery over a cap waits about this long (with jitter) before it looks again.
    busy_wait_seconds: float = 2.0


def delivery_policy() -> DeliveryPolicy:
    return DeliveryPolicy(
        backoff=Backoff(
            base_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS, cap_seconds=settings.WEBHOOK_RETRY_CAP_SECONDS, jitter=0.2
        ),
        # The lease outlives the longest attempt (the DNS bound, then the HTTP deadline), so a
        # healthy delivery is never swept to a second worker while its first is still sending.
        lease=Lease(seconds=int(settings.WEBHOOK_DNS_TIMEOUT + settings.WEBHOOK_DEADLINE) + 30),
        window_seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS,
        max_per_endpoint=settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT,
        max_per_merchant=settings.WEBHOOK_MAX_IN_FLIGHT_PER_MERCHANT,
    )


def _secret_ctx(endpoint_id: int, field: str) -> str:
    return f"webhook:{endpoint_id}:{field}"


def url_policy() -> Policy:
    """Which receivers may be called, from the settings (docs/webhooks.md, "Which URLs are accepted")."""
    return Policy(
        allow_private=bool(settings.WEBHOOK_ALLOW_PRIVATE_URLS),
        private_networks=tuple(settings.WEBHOOK_PRIVATE_NETWORKS),
        dns_servers=tuple(settings.WEBHOOK_DNS_SERVERS),
        dns_timeout=float(settings.WEBHOOK_DNS_TIMEOUT),
    )


def webhook_url_check(url: object) -> str:
    """The URL, if it may be called; the refusal names no address (urlguard logs the details)."""
    try:
        url_check(url, policy=url_policy())
    except UnsafeUrl as exc:
        raise InvalidWebhook(str(exc), field="url") from None
    assert isinstance(url, str)
    return url


def _checked_event_types(event_types: object) -> list[str]:
    if event_types is None:
        return []
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise InvalidWebhook("event_types must be a list of event type names", field="event_types")
    unknown = sorted(set(event_types) - set(SUBSCRIBABLE))
    if unknown:
        raise InvalidWebhook(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(SUBSCRIBABLE)}", field="event_types"
        )
    return sorted(set(event_types))


# --- endpoints ---------------------------------------------------------------------------------


def webhook_endpoint_register(
    *, authorizer: Authorizer, url: str, actor: Actor, event_types: list[str] | None = None, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Register a receiver; returns the endpoint and its signing secret, which is never shown again."""
    types = _checked_event_types(event_types)
    # The cap before the DNS lookup: a merchant at its limit costs no resolution (and no wait on one).
    if _active_endpoints(authorizer).count() >= MAX_ENDPOINTS_PER_MERCHANT:
        raise InvalidWebhook(f"at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints per merchant")
    checked_url = webhook_url_check(url)
    with transaction.atomic():
        # The merchant's row is the fence: two registrations at once cannot both pass the limit.
        Authorizer.objects.select_for_update().filter(pk=authorizer.pk).values_list("pk", flat=True).first()
        if _active_endpoints(authorizer).count() >= MAX_ENDPOINTS_PER_MERCHANT:
            raise InvalidWebhook(f"at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints per merchant")
        endpoint = WebhookEndpoint.objects.create(
            authorizer=authorizer, url=checked_url, event_types=types, description=description[:200]
        )
        secret = signing.secret_generate()
        endpoint.secret_ciphertext = fieldcrypto.encrypt(secret, context=_secret_ctx(endpoint.pk, "secret"))
        endpoint.save(update_fields=["secret_ciphertext"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_REGISTERED,
            authorizer_appid=authorizer.appid,
            subject=f"endpoint {endpoint.pk}",
            outcome="ok",
            detail={"url": checked_url, "event_types": types},
        )
    return endpoint, secret


def _active_endpoints(authorizer: Authorizer) -> Any:
    return WebhookEndpoint.objects.filter(authorizer=authorizer, disabled_at__isnull=True)


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: Actor,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    if endpoint.disabled_at is not None:
        raise InvalidWebhook("this endpoint was deleted")
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = webhook_url_check(url)
    if event_types is not None:
        changes["event_types"] = _checked_event_types(event_types)
    if description is not None:
        changes["description"] = description[:200]
    if is_active is not None:
        changes["is_active"] = bool(is_active)
    with transaction.atomic():
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save(update_fields=[*changes, "updated_at"])
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_UPDATED,
            authorizer_appid=endpoint.authorizer.appid,
            subject=f"endpoint {endpoint.pk}",
            outcome="ok",
            detail={k: v for k, v in changes.items()},
        )
    return endpoint


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """A merchant's "delete": the endpoint stops receiving, its delivery log stays."""
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
            disabled_at=timezone.now(), is_active=False, updated_at=timezone.now()
        ):
            audit_record(
                actor=actor,
                action=AuditAction.WEBHOOK_DELETED,
                authorizer_appid=endpoint.authorizer.appid,
                subject=f"endpoint {endpoint.pk}",
                outcome="ok",
            )


def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor) -> str:
    """A new signing secret (returned once); the old one keeps signing alongside for a day."""
    if endpoint.disabled_at is not None:
        raise InvalidWebhook("this endpoint was deleted")
    secret = signing.secret_generate()
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        current = fieldcrypto.decrypt(locked.secret_ciphertext, context=_secret_ctx(locked.pk, "secret"))
        locked.previous_secret_ciphertext = fieldcrypto.encrypt(current, context=_secret_ctx(locked.pk, "previous"))
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret_ciphertext = fieldcrypto.encrypt(secret, context=_secret_ctx(locked.pk, "secret"))
        locked.secret_rotated_at = now
        locked.save(
            update_fields=[
                "previous_secret_ciphertext",
                "previous_secret_expires_at",
                "secret_ciphertext",
                "secret_rotated_at",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action=AuditAction.WEBHOOK_SECRET_ROTATED,
            authorizer_appid=locked.authorizer.appid,
            subject=f"endpoint {locked.pk}",
            outcome="ok",
            detail={"previous_valid_until": locked.previous_secret_expires_at.isoformat()},
        )
    endpoint.refresh_from_db()
    return secret


def _signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    found = [fieldcrypto.decrypt(endpoint.secret_ciphertext, context=_secret_ctx(endpoint.pk, "secret"))]
    if (
        endpoint.previous_secret_ciphertext
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > timezone.now()
    ):
        found.append(
            fieldcrypto.decrypt(endpoint.previous_secret_ciphertext, context=_secret_ctx(endpoint.pk, "previous"))
        )
    return found


# --- events ------------------------------------------------------------------------------------


def webhook_event_enqueue(
    *,
    authorizer_id: int,
    authorizer_appid: str,
    event_type: str,
    data: dict[str, Any],
) -> list[int]:
    """Record an event for each subscribed endpoint of the merchant, in the caller's transaction if
    there is one; the deliveries are sent to their queue after commit.

    Called by the services where things finish (a deletion, a cleanup run). One indexed query when
    the merchant has no endpoint, which is the common case.
    """
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(authorizer_id=authorizer_id, is_active=True, disabled_at__isnull=True)
        if e.wants(event_type)
    ]
    if not endpoints:
        return []
    return _enqueue(endpoints, authorizer_appid, event_type, data)


def webhook_events_enqueue(
    *,
    authorizer_id: int,
    authorizer_appid: str,
    event_type: str,
    data: Sequence[dict[str, Any]],
) -> list[int]:
    """``webhook_event_enqueue`` for many events of one merchant (a batch of finished deletions):
    one query for its endpoints, nothing more when it has none."""
    if not data:
        return []
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(authorizer_id=authorizer_id, is_active=True, disabled_at__isnull=True)
        if e.wants(event_type)
    ]
    if not endpoints:
        return []
    return [i for item in data for i in _enqueue(endpoints, authorizer_appid, event_type, item)]


def _enqueue(endpoints: list[WebhookEndpoint], appid: str, event_type: str, data: dict[str, Any]) -> list[int]:
    event_id = uuid.uuid4()
    now = timezone.now()
    payload = {
        "id": str(event_id),
        "type": event_type,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "authorizer_appid": appid,
        "data": data,
    }
    with transaction.atomic():
        rows = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=e, event_id=event_id, event_type=event_type, payload=payload, dispatched_at=now
                )
                for e in endpoints
            ]
        )
        ids = [row.pk for row in rows]
        deliveries_send(ids)
    return ids


def webhook_ping(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookDelivery:
    """A test event to one endpoint, whatever it subscribed to."""
    if endpoint.disabled_at is not None or not endpoint.is_active:
        raise InvalidWebhook("this endpoint is not active")
    (delivery_id,) = _enqueue(
        [endpoint],
        endpoint.authorizer.appid,
        EventType.PING,
        {"endpoint_id": endpoint.pk, "requested_by": actor.merchant_label},
    )
    return WebhookDelivery.objects.get(pk=delivery_id)


# --- delivering --------------------------------------------------------------------------------


def webhook_delivery_attempt(*, delivery_id: int, policy: DeliveryPolicy) -> Next:
    """Claim one delivery, POST it once, record the attempt, decide what comes next."""
    now = timezone.now()
    claimed = _claim(delivery_id, now, policy)
    if isinstance(claimed, Next):
        return claimed
    delivery = WebhookDelivery.objects.select_related("endpoint__authorizer").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if endpoint.disabled_at is not None or not endpoint.is_active:
        outcome = transport.Outcome(status_code=None, error="the endpoint is disabled", duration_ms=0)
        _record_attempt(delivery, outcome)
        _give_up(delivery, outcome)
        return Next()
    outcome = _send(delivery, endpoint)
    _record_attempt(delivery, outcome)
    if outcome.ok:
        WebhookDelivery.objects.release(
            delivery,
            status=DeliveryStatus.SUCCEEDED,
            delivered_at=timezone.now(),
            last_status_code=outcome.status_code,
            last_error="",
            next_attempt_at=None,
            lease_expires_at=None,
        )
        return Next()
    delay = policy.backoff.delay(delivery.attempts)
    due = timezone.now() + timedelta(seconds=delay)
    if due > delivery.created_at + timedelta(seconds=policy.window_seconds):
        _give_up(delivery, outcome)
        return Next()
    moved = WebhookDelivery.objects.release(
        delivery,
        status=DeliveryStatus.PENDING,
        next_attempt_at=due,
        dispatched_at=due,
        lease_expires_at=None,
        last_status_code=outcome.status_code,
        last_error=outcome.error,
    )
    return Next(countdown=delay) if moved else Next()


def _claim(delivery_id: int, now: Any, policy: DeliveryPolicy) -> Next | None:
    """pending → delivering if due and under both in-flight caps (None: claimed); else what to do.

    The merchant's endpoint rows are locked while the caps are counted, so two workers cannot both
    take the last slot; a delivery over a cap stays pending, due a little later, without using an
    attempt, and its task looks again then (a slow receiver holds at most the caps' worth of threads).
    """
    with transaction.atomic():
        row = (
            WebhookDelivery.objects.filter(pk=delivery_id)
            .due(now + policy.lease.early)
            .values("endpoint_id", "endpoint__authorizer_id")
            .first()
        )
        if row is None:
            return Next()  # done already, not due, or another worker has it
        merchant_id = row["endpoint__authorizer_id"]
        list(WebhookEndpoint.objects.select_for_update().filter(authorizer_id=merchant_id).values_list("pk"))
        busy = dict(
            WebhookDelivery.objects.filter(
                endpoint__authorizer_id=merchant_id, status=DeliveryStatus.DELIVERING, lease_expires_at__gte=now
            )
            .values("endpoint_id")
            .annotate(n=Count("pk"))
            .values_list("endpoint_id", "n")
        )
        if busy.get(row["endpoint_id"], 0) >= policy.max_per_endpoint or sum(busy.values()) >= policy.max_per_merchant:
            wait = policy.busy_wait_seconds * (1 + random.random() / 2)  # jitter, not a secret
            later = now + timedelta(seconds=wait)
            WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
                next_attempt_at=later, dispatched_at=later, updated_at=now
            )
            return Next(countdown=wait)
        claimed = WebhookDelivery.objects.filter(pk=delivery_id).claim(now=now, lease=policy.lease)
    return None if claimed else Next()


def _send(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> transport.Outcome:
    started = time.monotonic()
    try:
        target, addresses = url_check(endpoint.url, policy=url_policy())
    except UnsafeUrl as exc:
        spent = int((time.monotonic() - started) * 1000)
        return transport.Outcome(status_code=None, error=f"not sent: {exc}"[:255], duration_ms=spent)
    body = signing.body_encode(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Kfp-Event-Id": str(delivery.event_id),
        "Kfp-Event-Type": delivery.event_type,
        "Kfp-Delivery-Attempt": str(delivery.attempts),
        "Kfp-Timestamp": str(timestamp),
        "Kfp-Signature": signing.signature_header(_signing_secrets(endpoint), timestamp, body),
    }
    return transport.post(
        target,
        addresses[0],
        body=body,
        headers=headers,
        connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
        read_timeout=settings.WEBHOOK_READ_TIMEOUT,
        deadline=settings.WEBHOOK_DEADLINE,
        ca_certs=settings.WEBHOOK_CA_BUNDLE,
    )


def _record_attempt(delivery: WebhookDelivery, outcome: transport.Outcome) -> None:
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )


def _give_up(delivery: WebhookDelivery, outcome: transport.Outcome) -> None:
    now = timezone.now()
    if WebhookDelivery.objects.release(
        delivery,
        status=DeliveryStatus.FAILED,
        gave_up_at=now,
        next_attempt_at=None,
        lease_expires_at=None,
        last_status_code=outcome.status_code,
        last_error=outcome.error,
    ):
        audit_record(
            actor=Actor.system("webhooks"),
            action=AuditAction.WEBHOOK_DELIVERY_FAILED,
            authorizer_appid=delivery.endpoint.authorizer.appid,
            subject=f"delivery {delivery.pk}",
            outcome="gave_up",
            errmsg=outcome.error,
            detail={
                "endpoint_id": delivery.endpoint_id,
                "event_type": delivery.event_type,
                "attempts": delivery.attempts,
            },
        )


def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: Actor) -> bool:
    """A staff "try again" for a delivery that was given up: one more attempt, now."""
    now = timezone.now()
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING,
            gave_up_at=None,
            next_attempt_at=None,
            dispatched_at=now,
            # A fresh window, so a failure of this attempt is retried with backoff again.
            created_at=now,
            updated_at=now,
        )
        if moved:
            audit_record(
                actor=actor,
                action=AuditAction.WEBHOOK_DELIVERY_RETRIED,
                authorizer_appid=delivery.endpoint.authorizer.appid,
                subject=f"delivery {delivery.pk}",
                outcome="pending",
            )
            deliveries_send([delivery.pk])
    return bool(moved)


def webhook_deliveries_sweep(*, stale_after: timedelta = timedelta(minutes=2)) -> int:
    """Re-send what a crash or a lost message left behind; returns how many were re-sent."""
    now = timezone.now()
    WebhookDelivery.objects.requeue_expired(now, dispatched_at=None)
    due = list(WebhookDelivery.objects.unsent(now, stale_after).order_by("id").values_list("pk", flat=True)[:1000])
    if due:
        WebhookDelivery.objects.mark_sent(due, now)
        deliveries_send(due)
    return len(due)
