"""Issue 3 end to end: who may delete, and whose deletions each merchant may see.

An ineligible merchant is refused before anything reaches WeChat; one merchant never sees, reads
or touches another's deletions or accounts.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import DEL, MerchantApi, Stack, del_calls

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        pytest.param(
            {"kind": "subscription", "certified": False, "func": (1, 6)},
            "not_certified",
            id="uncertified-official-account",
        ),
        pytest.param(
            {"kind": "service", "certified": True, "func": (2, 15)},
            "missing_permission",
            id="no-kf-permission-set-granted",
        ),
    ],
)
def test_ineligible_merchant_is_refused_before_any_call_to_wechat(stack: Stack, account: dict, reason: str) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"), **account)
    mark = sandbox.mark()

    shown = merchant.api.authorizer()
    assert shown["eligible"] is False
    assert [r["code"] for r in shown["reasons"]] == [reason]
    for response in (
        merchant.api.delete(f"/api/v1/kf-accounts/{merchant.kf[0]}/"),
        merchant.api.post("/api/v1/deletions/", {"kf_account": merchant.kf[0]}),
        merchant.api.post("/api/v1/deletions/", {"kf_accounts": merchant.kf}),
    ):
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "not_eligible" and error["message"]

    assert merchant.api.all_deletions() == []
    assert del_calls(sandbox, merchant.appid, since=mark) == []
    assert sorted(sandbox.kf_accounts(merchant.appid)) == sorted(merchant.kf)


def test_uncertified_mini_program_with_set_19_may_delete(stack: Stack) -> None:
    # Certification is required of Official and Service Accounts only; set 19 is the Mini Program kf set.
    merchant = stack.new_merchant(kind="mini_program", certified=False, func=(17, 18, 19), kf=("alice",))
    mark = stack.sandbox.mark()

    shown = merchant.api.authorizer()
    deletion = merchant.api.request_deletion(merchant.kf[0])

    assert (shown["kind"], shown["certified"], shown["eligible"]) == ("mini_program", False, True)
    assert merchant.api.wait_deletion(deletion["id"])["status"] == "succeeded"
    assert [c["errcode"] for c in del_calls(stack.sandbox, merchant.appid, since=mark)] == [0]


def test_merchants_see_and_touch_only_their_own_deletions(stack: Stack) -> None:
    sandbox = stack.sandbox
    a = stack.new_merchant(kf=("alice", "amy"))
    b = stack.new_merchant(kf=("bob", "bert"))
    mark = sandbox.mark()
    a_deletion = a.api.wait_deletion(a.api.request_deletion(a.kf[0])["id"])
    b_deletion = b.api.wait_deletion(b.api.request_deletion(b.kf[0])["id"])
    assert (a_deletion["status"], b_deletion["status"]) == ("succeeded", "succeeded")

    # Another merchant's deletion is not found: no 403 that would confirm it exists, no data.
    response = a.api.get(f"/api/v1/deletions/{b_deletion['id']}/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": response.json()["error"]["message"]}}
    assert b_deletion["kf_account"] not in response.text
    assert [d["id"] for d in a.api.all_deletions()] == [a_deletion["id"]]
    assert [d["id"] for d in b.api.all_deletions()] == [b_deletion["id"]]
    assert a.api.get("/api/v1/deletions/", params={"status": "succeeded"}).json()["results"] == [a_deletion]
    for method in ("PUT", "PATCH", "DELETE"):
        assert a.api.request(method, f"/api/v1/deletions/{b_deletion['id']}/").status_code in (404, 405)
    assert b.api.deletion(b_deletion["id"]) == b_deletion

    # Naming B's account gets it deleted with A's token, at A's WeChat account: WeChat says no.
    attempt = a.api.wait_deletion(a.api.request_deletion(b.kf[1])["id"])
    assert (attempt["status"], attempt["reason"]) == ("failed", "invalid_kf_account"), attempt
    assert b.kf[1] in sandbox.kf_accounts(b.appid)
    assert {c["authorizer_appid"] for c in sandbox.calls(path=DEL, since=mark)} == {a.appid, b.appid}
    assert [c["body"]["kf_account"] for c in del_calls(sandbox, b.appid, since=mark)] == [b.kf[0]]

    # Without a key, or with a wrong one, nothing at all.
    assert a.key is not None
    anonymous, forged = MerchantApi(stack.web_url, None), MerchantApi(stack.web_url, a.key[:-4] + "AAAA")
    for client in (anonymous, forged):
        response = client.get(f"/api/v1/deletions/{a_deletion['id']}/")
        assert response.status_code in (401, 403), response.text
        assert "error" in response.json() and a_deletion["kf_account"] not in response.text
