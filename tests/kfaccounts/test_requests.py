"""One active request per account, and Idempotency-Key replays: asking twice never deletes twice."""

from __future__ import annotations

import json

import pytest

from kfaccounts.models import DeletionRequest, IdempotencyRecord
from tests.kfaccounts.conftest import DEL_URL, OK, del_calls

pytestmark = pytest.mark.django_db


def _post(client, payload: dict, capture, key: str | None = None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    with capture(execute=True) as callbacks:
        response = client.post("/api/v1/deletions/", payload, format="json", **extra)
    return response, callbacks


def test_a_pending_request_is_returned_again_instead_of_a_second_one(wechat, merchant, client):
    # Without executing on-commit callbacks the first request stays pending, as with a busy worker.
    first = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    again = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    by_name = client.delete("/api/v1/kf-accounts/kf1@shop/").json()
    bulk = client.post(
        "/api/v1/deletions/", {"kf_accounts": ["kf2@shop", "kf1@shop", "kf2@shop"]}, format="json"
    ).json()["deletions"]
    assert first["status"] == "pending"
    assert again["id"] == by_name["id"] == bulk[1]["id"] == first["id"]
    assert bulk[0]["kf_account"] == "kf2@shop" and len(bulk) == 2  # repeats are folded, order kept
    assert DeletionRequest.objects.filter(kf_account="kf1@shop").count() == 1
    assert len(wechat.calls) == 0


def test_a_running_request_is_returned_again(wechat, merchant, client):
    first = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    DeletionRequest.objects.filter(pk=first["id"]).update(status="running")
    again = client.post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    assert (again["id"], again["status"]) == (first["id"], "running")


def test_after_a_terminal_state_asking_again_creates_a_new_request(wechat, merchant, client, request_deletion):
    wechat.post(DEL_URL, json={"errcode": 65400, "errmsg": "please enable new custom service"})
    wechat.post(DEL_URL, json=OK)
    first = request_deletion(client)
    assert DeletionRequest.objects.get(pk=first["id"]).status == "failed"
    second = request_deletion(client)
    assert second["id"] != first["id"]
    assert DeletionRequest.objects.get(pk=second["id"]).status == "succeeded"
    assert len(del_calls(wechat)) == 2


def test_the_same_account_for_two_merchants_gives_two_requests(
    wechat, make_authorizer, component_ready, api_client_for
):
    a, b = make_authorizer(), make_authorizer()
    one = api_client_for(a).post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    two = api_client_for(b).post("/api/v1/deletions/", {"kf_account": "kf1@shop"}, format="json").json()
    assert one["id"] != two["id"]


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_same_deletions_and_dispatches_nothing_new(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    payload = {"kf_accounts": ["kf1@shop", "kf2@shop"]}
    first, sent_first = _post(client, payload, django_capture_on_commit_callbacks, key="abc-1")
    assert first.status_code == 202
    assert len(sent_first) == 1 and len(del_calls(wechat)) == 2
    replay, sent_replay = _post(client, payload, django_capture_on_commit_callbacks, key="abc-1")
    assert replay.status_code == 202
    assert [d["id"] for d in replay.json()["deletions"]] == [d["id"] for d in first.json()["deletions"]]
    # The replay shows the current state of the same rows.
    assert [d["status"] for d in replay.json()["deletions"]] == ["succeeded", "succeeded"]
    assert sent_replay == []
    assert len(del_calls(wechat)) == 2
    assert DeletionRequest.objects.count() == 2 and IdempotencyRecord.objects.count() == 1


def test_idempotency_key_replay_after_terminal_state_does_not_delete_again(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    first, _ = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="k")
    replay, sent = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="k")
    assert replay.json()["id"] == first.json()["id"]
    assert sent == [] and len(del_calls(wechat)) == 1
    # Without the key, a terminal request is no obstacle to a new one.
    fresh, _ = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks)
    assert fresh.json()["id"] != first.json()["id"]


def test_same_idempotency_key_with_a_different_body_is_a_422_conflict(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    first, _ = _post(client, {"kf_accounts": ["kf1@shop"]}, django_capture_on_commit_callbacks, key="k1")
    conflict, sent = _post(client, {"kf_accounts": ["kf2@shop"]}, django_capture_on_commit_callbacks, key="k1")
    assert conflict.status_code == 422
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert sent == []
    assert list(DeletionRequest.objects.values_list("kf_account", flat=True)) == ["kf1@shop"]


def test_idempotency_keys_are_per_merchant(
    wechat, make_authorizer, component_ready, api_client_for, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    a, b = make_authorizer(), make_authorizer()
    one, _ = _post(api_client_for(a), {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="same")
    two, _ = _post(api_client_for(b), {"kf_account": "kf2@shop"}, django_capture_on_commit_callbacks, key="same")
    assert (one.status_code, two.status_code) == (202, 202)
    assert one.json()["id"] != two.json()["id"]
    assert DeletionRequest.objects.get(pk=two.json()["id"]).authorizer_id == b.pk
    assert len(del_calls(wechat)) == 2


def test_a_refused_request_does_not_use_up_its_idempotency_key(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    bad, _ = _post(client, {"kf_account": "bad!"}, django_capture_on_commit_callbacks, key="k")
    assert bad.status_code == 400
    good, _ = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="k")
    assert good.status_code == 202


def test_a_bulk_request_is_sent_as_one_message_for_the_merchant_and_every_deletion_runs(
    wechat, merchant, client, django_capture_on_commit_callbacks, settings
):
    settings.DELETION_BATCH_SIZE = 7  # several batches, each sending the next
    wechat.post(DEL_URL, json=OK)
    accounts = [f"kf{i}@shop" for i in range(25)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/deletions/", {"kf_accounts": accounts}, format="json")
    assert response.status_code == 202
    assert len(callbacks) == 1
    assert set(DeletionRequest.objects.values_list("status", flat=True)) == {"succeeded"}
    assert sorted(json.loads(c.request.body)["kf_account"] for c in del_calls(wechat)) == sorted(accounts)


def test_an_idempotent_replay_answers_as_before_even_if_the_merchant_became_ineligible(
    wechat, merchant, client, django_capture_on_commit_callbacks
):
    wechat.post(DEL_URL, json=OK)
    first, _ = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="k")
    type(merchant).objects.filter(pk=merchant.pk).update(func_ids=[2])
    replay, sent = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="k")
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    fresh, _ = _post(client, {"kf_account": "kf1@shop"}, django_capture_on_commit_callbacks, key="other")
    assert fresh.status_code == 403


def test_deletions_for_reads_ids_once_so_a_generator_works_and_keeps_its_order(merchant):
    from audit.services import Actor
    from kfaccounts import services

    rows = services.deletions_request(
        authorizer=merchant, kf_accounts=["kf1@shop", "kf2@shop", "kf3@shop"], actor=Actor.system("test")
    )
    wanted = [rows[2].pk, 999_999, rows[0].pk]
    assert [d.pk for d in services.deletions_for(pk for pk in wanted)] == [rows[2].pk, rows[0].pk]
