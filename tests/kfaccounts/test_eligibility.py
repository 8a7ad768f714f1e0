"""Ineligible merchants are refused before anything reaches WeChat, with the policy's reasons."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from authorizers.models import AccountKind, Authorizer
from kfaccounts import services
from kfaccounts.models import DeletionRequest
from kfaccounts.tasks import run_deletions
from tests.kfaccounts.conftest import DEL_URL, OK, del_calls, deletions_sent

pytestmark = pytest.mark.django_db

INELIGIBLE = [
    pytest.param({"func_ids": []}, ["missing_permission"], id="no-permission-sets"),
    pytest.param({"func_ids": [2, 3, 7]}, ["missing_permission"], id="no-kf-permission-set"),
    pytest.param({"verify_type_id": -1}, ["not_certified"], id="uncertified-subscription"),
    pytest.param(
        {"kind": AccountKind.SERVICE, "service_type_id": 2, "verify_type_id": -1},
        ["not_certified"],
        id="uncertified-service-account",
    ),
    pytest.param({"status": "revoked"}, ["authorization_revoked"], id="revoked"),
    pytest.param({"account_status": 14}, ["account_abnormal"], id="account-status-14"),
    pytest.param({"kind": AccountKind.UNKNOWN}, ["unsupported_account_type"], id="unknown-kind"),
    pytest.param({"func_ids": [], "verify_type_id": -1}, ["not_certified", "missing_permission"], id="two-reasons"),
]


@pytest.mark.parametrize(("fields", "codes"), INELIGIBLE)
def test_ineligible_merchant_is_refused_with_403_before_any_call_to_wechat(
    wechat, make_authorizer, component_ready, api_client_for, django_capture_on_commit_callbacks, fields, codes
):
    merchant = make_authorizer(**fields)
    client = api_client_for(merchant)
    wechat.post(DEL_URL, json=OK)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        single = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json")
        bulk = client.post("/api/v1/deletions/", {"kf_accounts": ["kf1@shop", "kf2@shop"]}, format="json")
        by_name = client.delete("/api/v1/kf-accounts/kf1@shop/")
    for response in (single, bulk, by_name):
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert error["code"] == "not_eligible"
        assert error["message"]
    assert callbacks == []
    assert len(wechat.calls) == 0
    assert not DeletionRequest.objects.exists()
    assert AuditEvent.objects.filter(action="deletion.refused", outcome="not_eligible").count() == 3

    shown = client.get("/api/v1/authorizer/").json()
    assert shown["eligible"] is False
    assert [r["code"] for r in shown["reasons"]] == codes
    assert all(r["message"] for r in shown["reasons"])


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {"kind": AccountKind.MINI_PROGRAM, "service_type_id": 0, "verify_type_id": -1, "func_ids": [19]},
            id="uncertified-mini-program-with-set-19",
        ),
        pytest.param(
            {"kind": AccountKind.MINI_GAME, "service_type_id": 4, "verify_type_id": -1, "func_ids": [19]},
            id="mini-game",
        ),
        pytest.param(
            {"kind": AccountKind.SERVICE, "service_type_id": 2, "verify_type_id": 0, "func_ids": [6]},
            id="certified-service-account-with-set-6",
        ),
        pytest.param({"func_ids": [100]}, id="set-100"),
        pytest.param({"func_ids": [101]}, id="set-101"),
        pytest.param({"account_status": None}, id="account-status-unknown"),
    ],
)
def test_eligible_merchants_reach_wechat(
    wechat, make_authorizer, component_ready, api_client_for, request_deletion, fields
):
    merchant = make_authorizer(**fields)
    client = api_client_for(merchant)
    wechat.post(DEL_URL, json=OK)
    body = request_deletion(client, "kf1@shop")
    assert DeletionRequest.objects.get(pk=body["id"]).status == "succeeded"
    assert len(del_calls(wechat)) == 1
    shown = client.get("/api/v1/authorizer/").json()
    assert (shown["eligible"], shown["reasons"]) == (True, [])


def test_merchant_that_became_ineligible_before_the_task_ran_is_rejected_without_a_call(wechat, merchant):
    (deletion,) = services.deletions_request(authorizer=merchant, kf_accounts=["kf1@shop"], actor=Actor.system("test"))
    Authorizer.objects.filter(pk=merchant.pk).update(func_ids=[2])
    run_deletions.delay(merchant.pk)
    deletion.refresh_from_db()
    assert (deletion.status, deletion.reason) == ("rejected", "not_eligible")
    assert "none of permission sets" in deletion.errmsg
    assert deletion.attempts == 0  # attempts counts calls to WeChat, and there was none
    assert len(wechat.calls) == 0


def test_batch_callers_get_rejected_rows_for_an_ineligible_merchant_and_nothing_is_sent(
    wechat, make_authorizer, django_capture_on_commit_callbacks
):
    merchant = make_authorizer(func_ids=[])
    with django_capture_on_commit_callbacks() as callbacks:
        deletions = services.deletions_request(
            authorizer=merchant,
            kf_accounts=["kf1@shop", "kf2@shop"],
            actor=Actor.system("test"),
            record_rejections=True,
        )
    assert [(d.status, d.reason) for d in deletions] == [("rejected", "not_eligible")] * 2
    assert all(d.finished_at is not None for d in deletions)
    assert deletions_sent(callbacks) == []
    assert len(wechat.calls) == 0


@pytest.mark.parametrize(
    "verify_type_id,certified",
    [(-1, False), (0, True), (1, False), (2, False), (3, True), (4, True), (5, True), (None, False)],
)
def test_certification_means_wechat_certification_not_weibo(make_authorizer, verify_type_id, certified):
    from authorizers.policy import eligibility

    for kind, service_type_id in ((AccountKind.SUBSCRIPTION, 0), (AccountKind.SERVICE, 2)):
        merchant = make_authorizer(kind=kind, service_type_id=service_type_id, verify_type_id=verify_type_id)
        assert merchant.is_certified is certified
        verdict = eligibility(merchant)
        assert verdict.eligible is certified
        assert ("not_certified" in [r.code for r in verdict.reasons]) is (not certified)


def test_mini_programs_and_mini_games_need_no_certification(make_authorizer):
    from authorizers.policy import eligibility

    for kind, service_type_id in ((AccountKind.MINI_PROGRAM, 0), (AccountKind.MINI_GAME, 4)):
        merchant = make_authorizer(kind=kind, service_type_id=service_type_id, verify_type_id=1, func_ids=[19])
        assert eligibility(merchant).eligible
