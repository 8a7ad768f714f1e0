"""Webhook endpoints in the console: only the manage permission registers, redirects or rotates a
secret (superusers have it, operators do not); operators ping and disable; nothing answers 500."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from audit.services import Actor
from tests.console.conftest import _staff, client_for
from webhooks import services, signing
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ADD = reverse("admin:webhooks_webhookendpoint_add")
ENDPOINTS = reverse("admin:webhooks_webhookendpoint_changelist")
PUBLIC = "https://93.184.216.34/hook"


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop", nickname="Shop")


@pytest.fixture
def endpoint(merchant, settings) -> WebhookEndpoint:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    endpoint, _ = services.webhook_endpoint_register(authorizer=merchant, url=PUBLIC, actor=Actor.system("test"))
    return endpoint


def _secrets(page) -> list[str]:
    return re.findall(r"<code data-webhook-secret>([^<]+)</code>", page.content.decode())


def test_registering_a_webhook_in_the_admin_shows_the_secret_once(merchant, superuser, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    client = client_for(superuser)
    refused = client.post(ADD, {"authorizer": merchant.pk, "url": "https://127.0.0.1/hook", "is_active": "on"})
    assert refused.status_code == 200 and b"does not resolve to a public address" in refused.content
    shown = client.post(ADD, {"authorizer": merchant.pk, "url": PUBLIC, "is_active": "on"})
    assert shown.status_code == 200 and shown["Cache-Control"].startswith("no-store")
    (secret,) = _secrets(shown)
    assert secret.startswith(signing.SECRET_PREFIX)
    endpoint = WebhookEndpoint.objects.get()
    change = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert secret.encode() not in change.content and endpoint.secret_ciphertext.encode() not in change.content


def test_an_operator_can_neither_register_nor_redirect_an_endpoint_nor_read_a_rotated_secret(
    operator, merchant, endpoint
):
    client = client_for(operator)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"authorizer": merchant.pk, "url": PUBLIC, "is_active": "on"}).status_code == 403
    change = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="url"' not in page.content  # read-only for them
    redirected = client.post(change, {"url": "https://93.184.216.35/elsewhere", "is_active": "on"})
    assert redirected.status_code == 403
    listing = client.get(ENDPOINTS)
    assert b'value="rotate_secret"' not in listing.content and b'value="send_ping"' in listing.content
    rotate = client.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True)
    assert rotate.status_code == 200 and _secrets(rotate) == []
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.secret_rotated_at) == (PUBLIC, None)
    assert WebhookEndpoint.objects.count() == 1


def test_an_operator_pings_and_disables(operator, endpoint, django_capture_on_commit_callbacks):
    client = client_for(operator)
    with django_capture_on_commit_callbacks():  # queued, not sent: the receiver is not the point here
        pinged = client.post(ENDPOINTS, {"action": "send_ping", "_selected_action": [endpoint.pk]}, follow=True)
    assert pinged.status_code == 200
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event_type="ping").count() == 1
    assert client.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk]}).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and not endpoint.is_active


def test_the_manage_permission_alone_grants_it_and_a_rotation_shows_the_new_secret_once(endpoint):
    manager = _staff("webhook_admin_zhao", "viewer")
    manager.user_permissions.add(Permission.objects.get(codename="manage_webhook_endpoints"))
    client = client_for(manager)
    rotated = client.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    assert rotated.status_code == 200 and rotated["Cache-Control"].startswith("no-store")
    (secret,) = _secrets(rotated)
    assert secret.startswith(signing.SECRET_PREFIX)
    endpoint.refresh_from_db()
    assert endpoint.secret_rotated_at is not None
    change = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    moved = client.post(change, {"url": "https://93.184.216.35/elsewhere", "is_active": "on"})
    assert moved.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.216.35/elsewhere"


def test_the_roles_do_not_carry_the_manage_permission():
    for name in ("viewer", "operator"):
        assert not Group.objects.get(name=name).permissions.filter(codename="manage_webhook_endpoints").exists()


def test_an_operator_retries_a_failed_delivery_and_a_viewer_cannot(operator, viewer, endpoint):
    (delivery_id,) = services._enqueue([endpoint], endpoint.authorizer.appid, "ping", {})
    WebhookDelivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED)
    deliveries = reverse("admin:webhooks_webhookdelivery_changelist")
    as_viewer = client_for(viewer).post(deliveries, {"action": "retry_now", "_selected_action": [delivery_id]})
    assert as_viewer.status_code in (200, 302)
    assert WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.FAILED
    client_for(operator).post(deliveries, {"action": "retry_now", "_selected_action": [delivery_id]})
    assert WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.PENDING
