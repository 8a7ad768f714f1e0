"""Events reach the merchant's receiver signed, are retried with backoff, and never follow redirects."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from audit.services import Actor
from kfaccounts.models import DeletionRequest
from tests.kfaccounts.conftest import DEL_URL, OK
from webhooks import services, signing
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint
from webhooks.tasks import dispatch_deliveries
from webhooks.urlguard import UnsafeUrl
from wechat.retry import Backoff

pytestmark = pytest.mark.django_db


def deliveries_sent(callbacks) -> list[int]:
    """The delivery ids that on-commit callbacks captured by ``django_capture_on_commit_callbacks`` send."""
    return [
        delivery_id
        for callback in callbacks
        if isinstance(callback, partial) and callback.func is dispatch_deliveries
        for delivery_id in callback.args[0]
    ]


STAFF = Actor.system("test")


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.0
    settings.WEBHOOK_RETRY_CAP_SECONDS = 0.0
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


def _register(authorizer, url, **kwargs) -> tuple[WebhookEndpoint, str]:
    return services.webhook_endpoint_register(authorizer=authorizer, url=url, actor=STAFF, **kwargs)


def _emit(authorizer, event_type=EventType.DELETION_FINISHED, data=None, capture=None) -> list[int]:
    with capture(execute=True):
        return services.webhook_event_enqueue(
            authorizer_id=authorizer.pk,
            authorizer_appid=authorizer.appid,
            event_type=event_type,
            data=data or {"deletion": {"id": 1}},
        )


def test_an_event_is_posted_once_signed_with_the_secret_shown_at_registration(
    make_authorizer, receiver, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    endpoint, secret = _register(merchant, receiver.url)
    (delivery_id,) = _emit(merchant, data={"deletion": {"id": 7}}, capture=django_capture_on_commit_callbacks)

    (got,) = receiver.received
    assert got.path == "/hooks/kf"
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"].startswith("application/json")
    assert signing.signature_verify(secret, headers["kfp-timestamp"], headers["kfp-signature"], got.body)
    event = json.loads(got.body)
    assert event["type"] == "deletion.finished" == headers["kfp-event-type"]
    assert event["id"] == headers["kfp-event-id"]
    assert event["authorizer_appid"] == merchant.appid
    assert event["data"] == {"deletion": {"id": 7}}
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert [a.status_code for a in delivery.attempt_log.all()] == [200]
    assert secret not in json.dumps(list(WebhookEndpoint.objects.values()), default=str)


def test_a_failing_receiver_gets_the_same_event_again_on_retry(
    make_authorizer, receiver, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    _, secret = _register(merchant, receiver.url)
    receiver.answers = [500, 503]
    (delivery_id,) = _emit(merchant, capture=django_capture_on_commit_callbacks)

    assert len(receiver.received) == 3
    assert len({r.headers["Kfp-Event-Id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    for got in receiver.received:
        assert signing.signature_verify(secret, got.headers["Kfp-Timestamp"], got.headers["Kfp-Signature"], got.body)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert [(a.number, a.status_code) for a in delivery.attempt_log.all()] == [(1, 500), (2, 503), (3, 200)]


def test_retries_back_off_exponentially_and_stop_after_the_window(make_authorizer, receiver, settings):
    merchant = make_authorizer()
    _register(merchant, receiver.url)
    receiver.answers = [500] * 10
    # An endpoint subscribed to everything still gets a ping only when one is asked for.
    assert (
        services.webhook_event_enqueue(
            authorizer_id=merchant.pk, authorizer_appid=merchant.appid, event_type=EventType.PING, data={}
        )
        == []
    )
    ids = services._enqueue(list(WebhookEndpoint.objects.all()), merchant.appid, "ping", {})
    policy = services.DeliveryPolicy(backoff=Backoff(base_seconds=30, cap_seconds=3600, jitter=0.2))
    delays = [policy.backoff.delay(n) for n in range(1, 9)]
    assert 24 <= delays[0] <= 30 and 48 <= delays[1] <= 60 and 96 <= delays[2] <= 120
    assert max(policy.backoff.delay(n) for n in range(12, 20)) <= 3600

    first = services.webhook_delivery_attempt(delivery_id=ids[0], policy=policy)
    assert first.countdown is not None and 24 <= first.countdown <= 30
    delivery = WebhookDelivery.objects.get(pk=ids[0])
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()
    # Not due yet: a second message does nothing.
    assert services.webhook_delivery_attempt(delivery_id=ids[0], policy=policy).countdown is None
    assert len(receiver.received) == 1
    # A day later the next failure is the last one.
    WebhookDelivery.objects.filter(pk=ids[0]).update(
        next_attempt_at=timezone.now(), created_at=timezone.now() - timedelta(hours=23, minutes=59, seconds=50)
    )
    assert services.webhook_delivery_attempt(delivery_id=ids[0], policy=policy).countdown is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.gave_up_at is not None) == (DeliveryStatus.FAILED, 2, True)


def test_redirects_are_not_followed(make_authorizer, receiver, django_capture_on_commit_callbacks, settings):
    from tests.webhooks.receiver import start_receiver

    elsewhere = start_receiver()
    try:
        merchant = make_authorizer()
        _register(merchant, receiver.url)
        receiver.answers = [302]
        receiver.redirect_to = elsewhere.url
        settings.WEBHOOK_RETRY_BASE_SECONDS = 60.0  # keep the retry for later
        settings.WEBHOOK_RETRY_CAP_SECONDS = 60.0
        (delivery_id,) = _emit(merchant, capture=django_capture_on_commit_callbacks)
    finally:
        elsewhere.close()
    assert elsewhere.received == []
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.PENDING
    assert "redirects are not followed" in delivery.last_error


def test_in_production_a_private_address_is_checked_again_at_delivery_and_not_called(
    make_authorizer, receiver, django_capture_on_commit_callbacks, settings
):
    merchant = make_authorizer()
    _register(merchant, receiver.url)  # registered while the demo setting allowed it
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60.0
    settings.WEBHOOK_RETRY_CAP_SECONDS = 60.0
    (delivery_id,) = _emit(merchant, capture=django_capture_on_commit_callbacks)
    assert receiver.received == []
    attempt = WebhookDelivery.objects.get(pk=delivery_id).attempt_log.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("not sent:") and "https" in attempt.error
    with pytest.raises(services.InvalidWebhook):
        _register(merchant, receiver.url)


def test_registration_refuses_unsafe_urls_and_stores_nothing(make_authorizer, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    merchant = make_authorizer()
    for url in ("http://93.184.216.34/", "https://127.0.0.1/", "https://192.168.0.10/x"):
        with pytest.raises(services.InvalidWebhook):
            _register(merchant, url)
    assert not WebhookEndpoint.objects.exists()
    endpoint, _ = _register(merchant, "https://93.184.216.34/hooks")
    assert endpoint.url == "https://93.184.216.34/hooks"
    with pytest.raises(UnsafeUrl):
        raise UnsafeUrl("sanity")


def test_after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one(
    make_authorizer, receiver, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    endpoint, old = _register(merchant, receiver.url)
    new = services.webhook_endpoint_secret_rotate(endpoint=endpoint, actor=STAFF)
    assert new != old
    _emit(merchant, capture=django_capture_on_commit_callbacks)
    got = receiver.received[-1]
    assert got.headers["Kfp-Signature"].count("v1=") == 2
    for secret in (old, new):
        assert signing.signature_verify(secret, got.headers["Kfp-Timestamp"], got.headers["Kfp-Signature"], got.body)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    _emit(merchant, capture=django_capture_on_commit_callbacks)
    got = receiver.received[-1]
    assert got.headers["Kfp-Signature"].count("v1=") == 1
    assert signing.signature_verify(new, got.headers["Kfp-Timestamp"], got.headers["Kfp-Signature"], got.body)
    assert not signing.signature_verify(old, got.headers["Kfp-Timestamp"], got.headers["Kfp-Signature"], got.body)


def test_subscriptions_disabled_endpoints_and_other_merchants_get_nothing(
    make_authorizer, receiver, django_capture_on_commit_callbacks
):
    merchant, other = make_authorizer(), make_authorizer()
    runs_only, _ = _register(merchant, receiver.url, event_types=["cleanup_run.finished"])
    deleted, _ = _register(merchant, receiver.url)
    services.webhook_endpoint_disable(endpoint=deleted, actor=STAFF)
    assert _emit(merchant, capture=django_capture_on_commit_callbacks) == []
    assert _emit(other, capture=django_capture_on_commit_callbacks) == []
    assert receiver.received == []
    assert len(_emit(merchant, EventType.RUN_FINISHED, capture=django_capture_on_commit_callbacks)) == 1
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["cleanup_run.finished"]
    with pytest.raises(services.InvalidWebhook):
        _register(merchant, receiver.url, event_types=["deletion.started"])
    assert runs_only.deliveries.count() == 1


def test_a_finished_deletion_is_announced_after_commit_and_a_dead_receiver_does_not_slow_it(
    make_authorizer, component_ready, wechat, api_client_for, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600.0
    settings.WEBHOOK_RETRY_CAP_SECONDS = 3600.0
    merchant = make_authorizer()
    _register(merchant, "http://127.0.0.1:9/nobody-listens")
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(merchant).post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json")
    assert response.status_code == 202
    deletion = DeletionRequest.objects.get()
    assert deletion.status == "succeeded"
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "deletion.finished"
    data = delivery.payload["data"]["deletion"]
    assert (data["id"], data["kf_account"], data["status"], data["errcode"]) == (
        deletion.pk,
        "kf1@shop",
        "succeeded",
        0,
    )
    assert data["requested_by"]["kind"] == "api_key"
    assert delivery.status == DeliveryStatus.PENDING  # the receiver was down: retried later, deletion unaffected
    assert "ConnectionRefused" in delivery.last_error or "refused" in delivery.last_error.lower()


def test_the_sweeper_resends_lost_deliveries_and_recovers_expired_leases(
    make_authorizer, receiver, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    _register(merchant, receiver.url)
    with django_capture_on_commit_callbacks() as callbacks:  # captured, not run: the message is lost
        ids = services._enqueue(list(WebhookEndpoint.objects.all()), merchant.appid, "ping", {})
    assert deliveries_sent(callbacks) == ids

    def sweep() -> tuple[int, list[int]]:
        with django_capture_on_commit_callbacks() as callbacks:
            resent = services.webhook_deliveries_sweep()
        return resent, deliveries_sent(callbacks)

    assert sweep() == (0, [])  # sent just now
    WebhookDelivery.objects.filter(pk=ids[0]).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert sweep() == (1, ids)
    WebhookDelivery.objects.filter(pk=ids[0]).update(
        status=DeliveryStatus.DELIVERING, lease_expires_at=timezone.now() - timedelta(seconds=1), dispatched_at=None
    )
    assert sweep() == (1, ids)
    assert WebhookDelivery.objects.get(pk=ids[0]).status == DeliveryStatus.PENDING
