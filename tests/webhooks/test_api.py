"""/api/v1/webhooks/: register (secret once), rotate, ping, deliveries; scoped to the merchant."""

from __future__ import annotations

import pytest

from webhooks import signing
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(api_client_for, make_authorizer):
    return api_client_for(make_authorizer())


def test_registration_shows_the_secret_once_and_never_again(client, private_urls_allowed, receiver):
    created = client.post("/api/v1/webhooks/", {"url": receiver.url, "description": "ops"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == [] and body["is_active"]
    shown = client.get(f"/api/v1/webhooks/{body['id']}/").json()
    assert "secret" not in shown
    assert secret not in str(client.get("/api/v1/webhooks/").content)
    assert secret not in str(list(WebhookEndpoint.objects.values()))


def test_production_refuses_http_and_private_addresses_with_400(client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    for url in ("http://93.184.216.34/hook", "https://127.0.0.1/hook", "https://10.0.0.8/hook", "not a url"):
        response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["error"]["code"] == "invalid_input"
        assert "url" in response.json()["error"]["fields"]
    assert client.post("/api/v1/webhooks/", {}, format="json").status_code == 400
    assert not WebhookEndpoint.objects.exists()
    assert client.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/hook"}, format="json").status_code == 201


def test_a_refusal_names_the_field_the_service_found_at_fault(client, private_urls_allowed, receiver):
    for body, field in [
        ({"url": "not a url"}, "url"),
        ({"url": receiver.url, "event_types": ["no.such_event"]}, "event_types"),
    ]:
        response = client.post("/api/v1/webhooks/", body, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and list(error["fields"]) == [field], error
        assert error["message"].startswith(f"{field}: "), error
    endpoint = client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").json()
    refused = client.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"event_types": ["nope"]}, format="json")
    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["event_types"]
    refused = client.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"url": "ftp://x"}, format="json")
    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["url"]


def test_rotate_ping_and_the_delivery_log(client, private_urls_allowed, receiver, django_capture_on_commit_callbacks):
    endpoint = client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").json()
    rotated = client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret/")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"] and rotated.json()["previous_secret_valid_until"]
    with django_capture_on_commit_callbacks(execute=True):
        ping = client.post(f"/api/v1/webhooks/{endpoint['id']}/ping/")
    assert ping.status_code == 202
    (got,) = receiver.received
    for secret in (new_secret, endpoint["secret"]):
        assert signing.signature_verify(secret, got.headers["Kfp-Timestamp"], got.headers["Kfp-Signature"], got.body)
    (delivery,) = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/").json()["results"]
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == ("ping", "succeeded", 1)
    assert delivery["attempt_log"][0]["status_code"] == 200


def test_changes_and_deletion_and_another_merchants_endpoints_are_404(
    client, make_authorizer, api_client_for, private_urls_allowed, receiver
):
    endpoint = client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").json()
    changed = client.patch(
        f"/api/v1/webhooks/{endpoint['id']}/", {"event_types": ["cleanup_run.finished"]}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["event_types"] == ["cleanup_run.finished"]
    bad = client.patch(f"/api/v1/webhooks/{endpoint['id']}/", {"event_types": ["everything"]}, format="json")
    assert bad.status_code == 400
    other = api_client_for(make_authorizer())
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "rotate-secret/"),
        ("post", "ping/"),
        ("get", "deliveries/"),
    ]:
        response = getattr(other, method)(f"/api/v1/webhooks/{endpoint['id']}/{suffix}", {}, format="json")
        assert response.status_code == 404, (method, suffix)
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 204
    assert client.get(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 404
    assert WebhookEndpoint.objects.get().disabled_at is not None  # the log stays


def test_at_most_ten_active_endpoints_per_merchant(client, private_urls_allowed, receiver):
    for _ in range(10):
        assert client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").status_code == 201
    refused = client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json")
    assert refused.status_code == 400 and "at most 10" in refused.json()["error"]["message"]
    first = WebhookEndpoint.objects.order_by("id").first()
    assert first is not None
    assert client.delete(f"/api/v1/webhooks/{first.pk}/").status_code == 204
    assert client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").status_code == 201
