"""GET /metrics: protected, and what it reports is what the database and the WeChat calls say."""

from __future__ import annotations

import pytest
from django.utils import timezone

from kfaccounts.models import DeletionRequest, DeletionStatus
from tests.kfaccounts.conftest import DEL_URL

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-the-test"


@pytest.fixture
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/metrics", **headers)


def _value(text: str, sample: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_need_the_token(client, metrics_token) -> None:
    assert _scrape(client, None).status_code == 404
    assert _scrape(client, "wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 404  # no scheme
    assert _scrape(client).status_code == 200


def test_without_a_token_production_serves_no_metrics(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert client.get("/metrics").status_code == 404


def test_deletions_are_reported_by_status_and_reason_from_the_database(client, metrics_token, make_authorizer) -> None:
    merchant = make_authorizer()
    now = timezone.now()
    for n, (status, reason) in enumerate(
        [("succeeded", ""), ("succeeded", ""), ("failed", "invalid_kf_account"), ("pending", "")]
    ):
        DeletionRequest.objects.create(
            authorizer=merchant,
            kf_account=f"kf{n}@shop",
            status=status,
            reason=reason,
            requested_by_kind="system",
            finished_at=now if status != DeletionStatus.PENDING else None,
        )
    text = _scrape(client).content.decode()
    assert _value(text, 'kfplatform_deletions{reason="none",status="succeeded"}') == 2
    assert _value(text, 'kfplatform_deletions{reason="invalid_kf_account",status="failed"}') == 1
    assert _value(text, 'kfplatform_deletion_queue_depth{state="due"}') == 1
    assert _value(text, 'kfplatform_deletion_queue_depth{state="running"}') == 0
    platform = merchant.platform.component_appid
    assert _value(text, f'kfplatform_authorizer_tokens{{platform="{platform}",state="valid"}}') == 1


def test_ticket_age_is_reported(client, metrics_token, component_ready) -> None:
    platform = component_ready.component_appid
    age = _value(_scrape(client).content.decode(), f'kfplatform_verify_ticket_age_seconds{{platform="{platform}"}}')
    assert age is not None and 0 <= age < 60


def test_wechat_calls_are_counted_by_endpoint_and_errcode_with_latency(
    client, metrics_token, make_authorizer, component_ready, wechat
) -> None:
    from authorizers.client import wechat_client

    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid kf_account"})
    wechat.post(DEL_URL, json={"errcode": 0, "errmsg": "ok"})
    before = _scrape(client).content.decode()
    platform = component_ready.component_appid
    sample = (
        'kfplatform_wechat_calls_total{endpoint="/customservice/kfaccount/del",errcode="65401",'
        f'outcome="invalid_kf_account",platform="{platform}"}}'
    )
    latency = f'kfplatform_wechat_call_seconds_count{{endpoint="/customservice/kfaccount/del",platform="{platform}"}}'
    start, start_latency = _value(before, sample) or 0, _value(before, latency) or 0
    client_ = wechat_client()
    with pytest.raises(Exception):  # noqa: B017  (the taxonomy's InvalidKfAccount)
        client_.kf_delete(access_token="ACCESS_TOKEN_VALUE", kf_account="kf1@shop")
    client_.kf_delete(access_token="ACCESS_TOKEN_VALUE", kf_account="kf2@shop")
    after = _scrape(client).content.decode()
    assert _value(after, sample) == start + 1
    assert _value(after, latency) == start_latency + 2
    assert "ACCESS_TOKEN_VALUE" not in after
