"""manage.py issue_api_key and delete_kf_accounts, as an operator runs them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from kfaccounts.models import DeletionRequest
from tests.kfaccounts.conftest import DEL_URL, OK, body_of, del_calls


def _run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_issue_api_key_prints_the_key_last_and_it_authenticates(make_authorizer):
    merchant = make_authorizer()
    code, out, err = _run("issue_api_key", merchant.appid)
    assert code == 0
    key = out.strip().splitlines()[-1]
    assert key.startswith("kfp_")
    assert key not in err
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.get("/api/v1/authorizer/")
    assert response.status_code == 200 and response.json()["appid"] == merchant.appid
    assert merchant.api_keys.get().digest != key  # stored hashed


@pytest.mark.django_db
def test_issue_api_key_for_an_unknown_appid_is_an_error():
    with pytest.raises(CommandError):
        call_command("issue_api_key", "wxnobody", stdout=StringIO(), stderr=StringIO())


# The command commits and --wait polls the database while eager Celery runs each task as the
# transaction commits: these tests need real commits.


@pytest.mark.django_db(transaction=True)
def test_delete_command_records_a_rejection_for_bad_input_prints_a_summary_and_exits_non_zero(
    wechat, make_authorizer, component_ready
):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json=OK)
    code, out, err = _run("delete_kf_accounts", merchant.appid, "a@b", "bad!", "--wait")
    assert code == 1
    rows = {d.kf_account: d for d in DeletionRequest.objects.filter(authorizer=merchant)}
    assert (rows["a@b"].status, rows["a@b"].errcode) == ("succeeded", 0)
    assert (rows["bad!"].status, rows["bad!"].reason) == ("rejected", "invalid_input")
    assert rows["a@b"].requested_by_kind == "staff"
    (call,) = wechat.calls
    assert body_of(call) == {"kf_account": "a@b"}
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "ACCOUNT", "STATUS", "REASON", "ERRCODE", "ERRMSG"]
    assert any(line.split()[1:4] == ["a@b", "succeeded", "0"] for line in lines[1:])
    assert any(line.split()[1:4] == ["bad!", "rejected", "invalid_input"] for line in lines[1:])
    assert lines[-1] == "1 rejected, 1 succeeded"
    assert "deleting" in err  # the progress bar


@pytest.mark.django_db(transaction=True)
def test_delete_command_exits_zero_when_every_deletion_succeeded(wechat, make_authorizer, component_ready):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json=OK)
    code, out, _ = _run("delete_kf_accounts", merchant.appid, "kf1@shop", "kf2@shop", "--wait")
    assert code == 0
    assert out.splitlines()[-1] == "2 succeeded"
    assert sorted(body_of(c)["kf_account"] for c in del_calls(wechat)) == ["kf1@shop", "kf2@shop"]


@pytest.mark.django_db(transaction=True)
def test_delete_command_reports_failures_from_wechat_with_a_non_zero_exit(wechat, make_authorizer, component_ready):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json={"errcode": 65401, "errmsg": "invalid custom service account"})
    code, out, _ = _run("delete_kf_accounts", merchant.appid, "kf1@shop", "--wait")
    assert code == 1
    assert "invalid_kf_account" in out and "65401" in out
    assert out.splitlines()[-1] == "1 failed"


@pytest.mark.django_db(transaction=True)
def test_delete_command_reads_accounts_from_a_file(wechat, make_authorizer, component_ready, tmp_path):
    merchant = make_authorizer()
    wechat.post(DEL_URL, json=OK)
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# to delete\nkf1@shop\n\n  kf2@shop  \nkf1@shop\n", encoding="utf-8")
    code, out, _ = _run("delete_kf_accounts", merchant.appid, "kf3@shop", "--file", str(accounts), "--wait")
    assert code == 0
    assert sorted(d.kf_account for d in DeletionRequest.objects.all()) == ["kf1@shop", "kf2@shop", "kf3@shop"]
    assert len(del_calls(wechat)) == 3


@pytest.mark.django_db  # the test's transaction never commits: the requests stay pending, nothing is sent
def test_delete_command_handles_more_accounts_than_one_api_request_takes(
    wechat, make_authorizer, component_ready, tmp_path, django_capture_on_commit_callbacks
):
    merchant = make_authorizer()
    accounts = tmp_path / "many.txt"
    accounts.write_text("\n".join(f"k{i}@shop" for i in range(1200)), encoding="utf-8")
    with django_capture_on_commit_callbacks() as dispatches:
        code, out, _ = _run("delete_kf_accounts", merchant.appid, "--file", str(accounts))
    assert code == 0  # without --wait the command only asks
    assert DeletionRequest.objects.filter(authorizer=merchant, status="pending").count() == 1200
    assert len(dispatches) == 2  # one per chunk of at most 1,000
    assert out.splitlines()[-1] == "1200 pending"
    assert len(wechat.calls) == 0


@pytest.mark.django_db(transaction=True)
def test_delete_command_for_an_ineligible_merchant_records_rejections_and_calls_nothing(
    wechat, make_authorizer, component_ready
):
    merchant = make_authorizer(func_ids=[2])
    code, out, _ = _run("delete_kf_accounts", merchant.appid, "kf1@shop")
    assert code == 1
    assert DeletionRequest.objects.get().reason == "not_eligible"
    assert "not_eligible" in out
    assert len(wechat.calls) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("args", [("wxnobody", "kf1@shop"), ("{appid}",), ("{appid}", "--file", "/nonexistent/x")])
def test_delete_command_usage_errors(make_authorizer, args):
    merchant = make_authorizer()
    with pytest.raises(CommandError):
        call_command(
            "delete_kf_accounts", *(a.format(appid=merchant.appid) for a in args), stdout=StringIO(), stderr=StringIO()
        )
    assert not DeletionRequest.objects.exists()
