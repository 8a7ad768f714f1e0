"""Every request, state change and WeChat call is in the audit log; no token is anywhere."""

from __future__ import annotations

import logging

import pytest
import requests
from django.apps import apps
from django.db import models

from audit.models import AuditEvent
from kfaccounts.models import DeletionRequest
from tests.kfaccounts.conftest import DEL_URL, OK, TOKEN_URL

pytestmark = pytest.mark.django_db


def _trail(deletion_id: int) -> list[tuple]:
    return [
        (e.action, e.outcome, e.errcode, e.rid)
        for e in AuditEvent.objects.filter(detail__deletion_id=deletion_id).order_by("id")
    ]


def test_a_deletion_leaves_an_event_for_the_request_every_call_and_every_state_change(
    wechat, merchant, client, request_deletion
):
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": "access_token expired rid: 6643a1f2-0001-aaaa"})
    wechat.post(DEL_URL, json={"errcode": -1, "errmsg": "system error rid: 6643a1f2-0002-bbbb"})
    wechat.post(DEL_URL, json=OK)
    wechat.post(
        TOKEN_URL,
        json={"authorizer_access_token": "NEWTOKEN1", "expires_in": 7200, "authorizer_refresh_token": "REFRESH_NEXT"},
    )
    body = request_deletion(client)
    assert _trail(body["id"]) == [
        ("deletion.requested", "pending", None, ""),
        ("wechat.kf_delete_called", "token_invalid", 42001, "6643a1f2-0001-aaaa"),
        ("wechat.kf_delete_called", "upstream_unavailable", -1, "6643a1f2-0002-bbbb"),
        ("deletion.retry_scheduled", "retry_scheduled", -1, "6643a1f2-0002-bbbb"),
        ("wechat.kf_delete_called", "ok", 0, ""),
        ("deletion.succeeded", "succeeded", 0, ""),
    ]
    events = AuditEvent.objects.filter(authorizer_appid=merchant.appid)
    requested = events.get(action="deletion.requested")
    api_key = merchant.api_keys.get()
    assert (requested.actor_kind, requested.actor_id, requested.subject) == ("api_key", str(api_key.pk), "kf1@shop")
    assert requested.actor_label.startswith(api_key.prefix)
    assert {e.actor_kind for e in events.exclude(pk=requested.pk).exclude(action="api_key.issued")} == {"system"}
    # The token refresh between the two first calls is a WeChat call too.
    assert events.filter(action="wechat.authorizer_token_called", outcome="ok").count() == 1
    deletion = DeletionRequest.objects.get(pk=body["id"])
    assert (deletion.requested_by_kind, deletion.requested_by_id) == ("api_key", str(api_key.pk))


def test_a_failure_records_wechats_errcode_and_rid_on_the_deletion_and_its_events(
    wechat, merchant, client, request_deletion
):
    wechat.post(DEL_URL, json={"errcode": 65400, "errmsg": "please enable new custom service rid: 5f8e-77aa-01"})
    body = request_deletion(client)
    deletion = DeletionRequest.objects.get(pk=body["id"])
    assert (deletion.errcode, deletion.rid) == (65400, "5f8e-77aa-01")
    assert _trail(deletion.pk)[-2:] == [
        ("wechat.kf_delete_called", "kf_not_enabled", 65400, "5f8e-77aa-01"),
        ("deletion.failed", "kf_not_enabled", 65400, "5f8e-77aa-01"),
    ]
    shown = client.get(f"/api/v1/deletions/{deletion.pk}/").json()
    assert shown == {
        "id": deletion.pk,
        "kf_account": "kf1@shop",
        "status": "failed",
        "reason": "kf_not_enabled",
        "errcode": 65400,
        "errmsg": "please enable new custom service rid: 5f8e-77aa-01",
        "attempts": 1,
        "created_at": shown["created_at"],
        "finished_at": shown["finished_at"],
    }
    assert shown["finished_at"] is not None


def test_a_token_fetch_that_fails_is_audited_as_such(wechat, merchant, client, request_deletion, settings):
    settings.DELETION_MAX_TRANSIENT_FAILURES = 1
    wechat.post(DEL_URL, json={"errcode": 40001, "errmsg": "invalid credential"})
    wechat.post(TOKEN_URL, json={"errcode": -1, "errmsg": "system error rid: 77-88"})
    body = request_deletion(client)
    assert _trail(body["id"])[-2:] == [
        ("wechat.kf_delete_called", "token_invalid", 40001, ""),
        ("deletion.failed", "upstream_unavailable", -1, "77-88"),
    ]
    refresh = AuditEvent.objects.get(action="wechat.authorizer_token_called")
    assert (refresh.authorizer_appid, refresh.outcome, refresh.errcode, refresh.rid) == (
        merchant.appid,
        "upstream_unavailable",
        -1,
        "77-88",
    )
    assert refresh.detail["path"] == "/cgi-bin/component/api_authorizer_token"


def test_a_quota_pause_is_audited_for_the_merchant_and_the_deletion(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json={"errcode": 45009, "errmsg": "reach max api daily quota limit rid: q-1"})
    body = request_deletion(client)
    assert _trail(body["id"])[-2:] == [
        ("wechat.kf_delete_called", "quota_exceeded", 45009, "q-1"),
        ("deletion.deferred", "quota_exhausted", 45009, "q-1"),
    ]
    assert AuditEvent.objects.filter(action="authorizer.quota_paused", authorizer_appid=merchant.appid).count() == 1


def _text_values() -> list[tuple[str, str]]:
    found = []
    for model in apps.get_models():
        text = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField, models.JSONField))
        ]
        if not text:
            continue
        for row in model._default_manager.values_list(*text):
            found += [(model._meta.label, str(value)) for value in row if value]
    return found


def test_no_token_reaches_the_database_or_the_logs(
    wechat, merchant, client, request_deletion, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    old, new = f"ACCESS_{merchant.appid}", "ACCESS_REFRESHED_TOKEN_1"
    wechat.post(DEL_URL, json={"errcode": 42001, "errmsg": f"access_token expired: {old} rid: 1-2"})
    wechat.post(DEL_URL, body=requests.exceptions.ReadTimeout(f"read timed out: {DEL_URL}?access_token={new}"))
    wechat.post(DEL_URL, json={"errcode": -1, "errmsg": f"system error for {new}"})
    wechat.post(DEL_URL, json=OK)
    wechat.post(
        TOKEN_URL,
        json={
            "authorizer_access_token": new,
            "expires_in": 7200,
            "authorizer_refresh_token": f"REFRESH_NEXT_{merchant.appid}",
        },
    )
    body = request_deletion(client)
    assert DeletionRequest.objects.get(pk=body["id"]).status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/deletions/", {"kf_accounts": ["kf2@shop", "bad!"]}, format="json")
    leaks = [(table, value) for table, value in _text_values() if "ACCESS_" in value or "REFRESH_" in value]
    assert leaks == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the failures were logged...
    assert "ACCESS_" not in logged and "REFRESH_" not in logged  # ...without a token
    assert AuditEvent.objects.filter(action="wechat.kf_delete_called").count() == 4
