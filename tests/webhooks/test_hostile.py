"""A merchant's receiver and name server are hostile input: an overall deadline, in-flight caps, a DNS
bound on the request path, refusals that name no address, and no staff user name in a payload."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model

from audit.services import Actor, merchant_label
from tests.webhooks.dnsserver import start_blackhole
from tests.webhooks.receiver import start_drip_receiver
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.urlguard import NOT_PUBLIC

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def test_a_receiver_that_drips_its_headers_is_cut_off_at_the_overall_deadline(make_authorizer, settings):
    """One header byte every 0.3 s never trips the 5 s read timeout; the 1 s deadline ends it."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_DEADLINE = 1.0
    settings.WEBHOOK_READ_TIMEOUT = 5.0
    drip = start_drip_receiver(every=0.3)
    try:
        merchant = make_authorizer()
        services.webhook_endpoint_register(authorizer=merchant, url=drip.url, actor=SYSTEM)
        (delivery_id,) = services._enqueue(list(WebhookEndpoint.objects.all()), merchant.appid, "ping", {})
        started = time.monotonic()
        services.webhook_delivery_attempt(delivery_id=delivery_id, policy=services.delivery_policy())
        spent = time.monotonic() - started
        deadline = time.monotonic() + 10
        while drip.open_now and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drip.open_now == 0  # the connection was closed, not left to the receiver
    finally:
        drip.close()
    assert drip.served == 1
    assert 0.9 < spent < 4.0, spent
    attempt = WebhookAttempt.objects.get(delivery_id=delivery_id)
    assert attempt.status_code is None and "deadline" in attempt.error, attempt.error
    assert WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING  # retried later


def test_the_lease_outlives_the_dns_bound_and_the_deadline(settings):
    settings.WEBHOOK_DEADLINE = 10.0
    settings.WEBHOOK_DNS_TIMEOUT = 2.0
    assert services.delivery_policy().lease.seconds > 12


@pytest.mark.parametrize(("per_endpoint", "per_merchant"), [(2, 10), (10, 3)])
def test_deliveries_in_flight_are_capped_per_endpoint_and_per_merchant(
    make_authorizer, settings, receiver, per_endpoint, per_merchant
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = per_endpoint
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_MERCHANT = per_merchant
    merchant, other = make_authorizer(), make_authorizer()
    first, _ = services.webhook_endpoint_register(authorizer=merchant, url=receiver.url, actor=SYSTEM)
    second, _ = services.webhook_endpoint_register(authorizer=merchant, url=receiver.url, actor=SYSTEM)
    elsewhere, _ = services.webhook_endpoint_register(authorizer=other, url=receiver.url, actor=SYSTEM)
    busy = services._enqueue(
        [first, first, second] if per_merchant == 3 else [first, first], merchant.appid, "ping", {}
    )
    policy = services.delivery_policy()
    # Those are being sent right now (by other workers): a live lease each.
    WebhookDelivery.objects.filter(pk__in=busy).update(
        status=DeliveryStatus.DELIVERING, attempts=1, lease_expires_at=services.timezone.now() + services.timedelta(60)
    )
    (waiting,) = services._enqueue([first], merchant.appid, "ping", {})
    outcome = services.webhook_delivery_attempt(delivery_id=waiting, policy=policy)
    assert outcome.countdown is not None and 0 < outcome.countdown <= 2 * policy.busy_wait_seconds
    row = WebhookDelivery.objects.get(pk=waiting)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 0)  # waited, no attempt used
    assert receiver.received == []
    # Another merchant is not held up by this one's caps.
    (theirs,) = services._enqueue([elsewhere], other.appid, "ping", {})
    services.webhook_delivery_attempt(delivery_id=theirs, policy=policy)
    assert WebhookDelivery.objects.get(pk=theirs).status == DeliveryStatus.SUCCEEDED
    # A slot frees (a lease that ran out no longer counts): the waiting one goes, when due.
    WebhookDelivery.objects.filter(pk__in=busy).update(lease_expires_at=services.timezone.now())
    WebhookDelivery.objects.filter(pk=waiting).update(next_attempt_at=None)
    services.webhook_delivery_attempt(delivery_id=waiting, policy=policy)
    assert WebhookDelivery.objects.get(pk=waiting).status == DeliveryStatus.SUCCEEDED


def test_registration_through_the_api_waits_at_most_the_dns_bound_and_names_no_address(
    api_client_for, make_authorizer, settings
):
    blackhole = start_blackhole()
    try:
        host, port = blackhole.getsockname()
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        settings.WEBHOOK_DNS_SERVERS = (f"{host}:{port}",)
        settings.WEBHOOK_DNS_TIMEOUT = 0.5
        client = api_client_for(make_authorizer())
        started = time.monotonic()
        response = client.post("/api/v1/webhooks/", {"url": "https://hooks.blackholed.example/"}, format="json")
        spent = time.monotonic() - started
    finally:
        blackhole.close()
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["url"] == [NOT_PUBLIC]
    assert spent < 3.0, spent
    for url in ("https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://169.254.169.254/"):
        refused = client.post("/api/v1/webhooks/", {"url": url}, format="json")
        assert refused.status_code == 400
        assert refused.json()["error"]["fields"]["url"] == [NOT_PUBLIC]  # nothing about what it resolved to
    assert not WebhookEndpoint.objects.exists()


def test_a_merchant_at_its_endpoint_limit_costs_no_dns_lookup(api_client_for, make_authorizer, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    merchant = make_authorizer()
    for n in range(services.MAX_ENDPOINTS_PER_MERCHANT):
        services.webhook_endpoint_register(authorizer=merchant, url=f"http://127.0.0.1:{9000 + n}/", actor=SYSTEM)
    blackhole = start_blackhole()
    try:
        host, port = blackhole.getsockname()
        settings.WEBHOOK_DNS_SERVERS = (f"{host}:{port}",)
        settings.WEBHOOK_DNS_TIMEOUT = 5.0
        started = time.monotonic()
        response = api_client_for(merchant).post("/api/v1/webhooks/", {"url": "https://slow.example/"}, format="json")
        spent = time.monotonic() - started
    finally:
        blackhole.close()
    assert response.status_code == 400 and "at most" in response.content.decode()
    assert spent < 2.0, spent


def test_staff_user_names_never_reach_a_merchant_in_a_payload(make_authorizer, settings, receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    merchant = make_authorizer()
    endpoint, _ = services.webhook_endpoint_register(authorizer=merchant, url=receiver.url, actor=SYSTEM)
    staff = get_user_model().objects.create_user(username="wang.secret-admin", password="x", is_staff=True)
    delivery = services.webhook_ping(endpoint=endpoint, actor=Actor.staff(staff))
    assert delivery.payload["data"]["requested_by"] == "staff"
    assert "wang.secret-admin" not in json.dumps(delivery.payload)
    assert Actor.system("schedule:nightly").merchant_label == "schedule:nightly"
    assert merchant_label("staff", "wang.secret-admin") == "staff"  # the deletion.finished payload's label
