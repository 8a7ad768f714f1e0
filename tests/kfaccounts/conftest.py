"""Helpers for the kf-account tests: WeChat URLs, a quick way to ask for and run deletions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from tests.conftest import WECHAT

DEL_URL = f"{WECHAT}/customservice/kfaccount/del"
LIST_URL = f"{WECHAT}/cgi-bin/customservice/getkflist"
TOKEN_URL = f"{WECHAT}/cgi-bin/component/api_authorizer_token"
INFO_URL = f"{WECHAT}/cgi-bin/component/api_get_authorizer_info"

OK = {"errcode": 0, "errmsg": "ok"}


@pytest.fixture(autouse=True)
def _fast_retries(settings) -> None:
    """Retries due at once: with eager Celery the countdown re-send then runs the next attempt in-line."""
    settings.DELETION_RETRY_BASE_SECONDS = 0.0
    settings.DELETION_RETRY_CAP_SECONDS = 0.0
    settings.DELETION_MAX_TRANSIENT_FAILURES = 5


def del_calls(wechat) -> list:
    return [c for c in wechat.calls if c.request.url.split("?")[0] == DEL_URL]


def calls_to(wechat, url: str) -> list:
    return [c for c in wechat.calls if c.request.url.split("?")[0] == url]


def body_of(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer()


@pytest.fixture
def client(api_client_for, merchant):
    return api_client_for(merchant)


@pytest.fixture
def request_deletion(django_capture_on_commit_callbacks) -> Callable[..., dict]:
    """POST /api/v1/deletions/ and run what it dispatched (eager Celery), as a worker would."""

    def post(client, account: str = "kf1@shop", *, expect: int = 202, **extra) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/deletions/", {"kf_account": account}, format="json", **extra)
        assert response.status_code == expect, response.content
        return response.json()

    return post


@pytest.fixture
def make_due() -> Callable[[int], None]:
    """Move a scheduled retry into the past, as if its countdown had elapsed."""
    from kfaccounts.models import DeletionRequest

    def due(deletion_id: int) -> None:
        DeletionRequest.objects.filter(pk=deletion_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    return due


def deletions_sent(callbacks: list[Callable[[], object]]) -> list[int]:
    """The deletion ids that on-commit callbacks captured by ``django_capture_on_commit_callbacks`` send."""
    from kfaccounts.tasks import batch_enqueue

    return [
        deletion_id
        for callback in callbacks
        if isinstance(callback, partial) and callback.func is batch_enqueue
        for deletion_id in callback.keywords["deletion_ids"]
    ]
