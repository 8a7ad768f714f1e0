"""Staff interventions on a deletion: cancel while pending, retry once failed."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.models import AuthorizerStatus
from authorizers.policy import NotEligible
from kfaccounts import services
from kfaccounts.models import DeletionRequest
from tests.kfaccounts.conftest import DEL_URL, OK, del_calls, deletions_sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("ops1", password="x", is_staff=True)
    return Actor.staff(user)


def _request(merchant, account: str = "kf1@shop") -> DeletionRequest:
    (deletion,) = services.deletions_request(authorizer=merchant, kf_accounts=[account], actor=Actor.system("test"))
    return deletion


def test_cancelling_a_pending_deletion_ends_it_cancelled_and_a_later_task_does_not_call_wechat(wechat, merchant, staff):
    deletion = _request(merchant)
    services.deletion_cancel(deletion=deletion, actor=staff)
    deletion.refresh_from_db()
    assert deletion.status == "cancelled"
    assert deletion.is_terminal and deletion.finished_at is not None
    services.deletion_batch_execute(authorizer_id=merchant.pk, policy=services.RetryPolicy(), limit=50)
    assert del_calls(wechat) == []
    event = AuditEvent.objects.get(action="deletion.cancelled")
    assert (event.actor_kind, event.actor_label, event.detail) == ("staff", "ops1", {"deletion_id": deletion.pk})


def test_a_running_deletion_cannot_be_cancelled(merchant, staff):
    deletion = _request(merchant)
    DeletionRequest.objects.filter(pk=deletion.pk).update(status="running")
    with pytest.raises(services.DeletionNotCancellable, match=f"{merchant.appid} kf1@shop.*running"):
        services.deletion_cancel(deletion=deletion, actor=staff)
    assert DeletionRequest.objects.get(pk=deletion.pk).status == "running"
    assert not AuditEvent.objects.filter(action="deletion.cancelled").exists()


def test_cancelled_frees_the_account_for_a_new_request(merchant, staff):
    deletion = _request(merchant)
    services.deletion_cancel(deletion=deletion, actor=staff)
    again = _request(merchant)
    assert again.pk != deletion.pk and again.status == "pending"


def test_retrying_a_failed_deletion_sends_it_again_on_the_same_row_and_it_can_succeed(
    wechat, merchant, staff, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json={"errcode": 65400, "errmsg": "please enable new custom service"})
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True):
        (deletion,) = services.deletions_request(
            authorizer=merchant, kf_accounts=["kf1@shop"], actor=Actor.system("test")
        )
    deletion.refresh_from_db()
    assert (deletion.status, deletion.reason) == ("failed", "kf_not_enabled")
    with django_capture_on_commit_callbacks(execute=True):
        services.deletion_retry(deletion=deletion, actor=staff)
    deletion.refresh_from_db()
    assert (deletion.status, deletion.reason, deletion.attempts) == ("succeeded", "", 2)
    assert len(del_calls(wechat)) == 2
    event = AuditEvent.objects.get(action="deletion.retry_requested")
    assert (event.actor_label, event.detail["previous_reason"]) == ("ops1", "kf_not_enabled")


def test_only_a_failed_deletion_can_be_retried(merchant, staff, django_capture_on_commit_callbacks):
    deletion = _request(merchant)
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(services.DeletionNotRetryable, match="pending, only a failed deletion"),
    ):
        services.deletion_retry(deletion=deletion, actor=staff)
    assert deletions_sent(callbacks) == []


def test_retry_refused_while_another_deletion_of_the_account_is_active(
    merchant, staff, django_capture_on_commit_callbacks
):
    failed = _request(merchant)
    DeletionRequest.objects.filter(pk=failed.pk).update(status="failed", reason="kf_not_enabled")
    active = _request(merchant)
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(services.DeletionNotRetryable, match="another deletion of this account"),
    ):
        services.deletion_retry(deletion=failed, actor=staff)
    assert DeletionRequest.objects.get(pk=failed.pk).status == "failed"
    assert DeletionRequest.objects.get(pk=active.pk).status == "pending"
    assert deletions_sent(callbacks) == []


def test_retry_refused_when_the_merchant_is_no_longer_eligible(merchant, staff):
    deletion = _request(merchant)
    DeletionRequest.objects.filter(pk=deletion.pk).update(status="failed", reason="authorization_revoked")
    merchant.status = AuthorizerStatus.REVOKED
    merchant.save()
    deletion.refresh_from_db()
    with pytest.raises(NotEligible, match="revoked"):
        services.deletion_retry(deletion=deletion, actor=staff)
    assert DeletionRequest.objects.get(pk=deletion.pk).status == "failed"
    assert AuditEvent.objects.get(action="deletion.retry_refused").actor_label == "ops1"


def test_schema_documents_cancelled_as_a_deletion_status():
    schema = json.loads(APIClient().get("/api/schema/?format=json").content)
    status = schema["components"]["schemas"]["Deletion"]["properties"]["status"]
    assert status["allOf"] == [{"$ref": "#/components/schemas/DeletionStatusEnum"}]
    assert "cancelled" in schema["components"]["schemas"]["DeletionStatusEnum"]["enum"]
    assert "cancelled: withdrawn by the service provider's staff while still pending" in status["description"]
