"""Issue 3 end to end: merchants delete kf accounts through the API; WeChat (the sandbox) answers,
misbehaves on request, and every deletion ends in the state the design's table documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import AUTHORIZER_TOKEN, DEL, Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

DELETION_FIELDS = {"id", "kf_account", "status", "reason", "errcode", "errmsg", "attempts", "created_at", "finished_at"}
AUTHORIZER_INFO = "/cgi-bin/component/api_get_authorizer_info"


def test_merchant_deletes_accounts_and_wechat_sees_one_post_each_with_the_merchants_token(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob", "carol"))
    alice, bob, carol = merchant.kf
    mark = sandbox.mark()

    by_path = merchant.api.delete(f"/api/v1/kf-accounts/{alice}/")
    by_body = merchant.api.post("/api/v1/deletions/", {"kf_account": bob})

    assert by_path.status_code == 202, by_path.text
    assert by_body.status_code == 202, by_body.text
    for answer, account in ((by_path.json(), alice), (by_body.json(), bob)):
        assert set(answer) == DELETION_FIELDS
        assert answer["kf_account"] == account
        done = merchant.api.wait_deletion(answer["id"])
        assert (done["status"], done["reason"], done["errcode"], done["attempts"]) == ("succeeded", "", 0, 1), done
        assert done["finished_at"] is not None
    calls = del_calls(sandbox, merchant.appid, since=mark)
    assert sorted(c["body"]["kf_account"] for c in calls) == [alice, bob]
    for call in calls:
        assert call["method"] == "POST"
        assert set(call["body"]) == {"kf_account"}  # the JSON body, nothing else
        assert set(call["query"]) == {"access_token"}
        # The sandbox names the account a token was issued to: this merchant's.
        assert call["authorizer_appid"] == merchant.appid
        assert call["errcode"] == 0
    assert [c for c in sandbox.calls(path=DEL, since=mark) if c["authorizer_appid"] != merchant.appid] == []
    assert sandbox.kf_accounts(merchant.appid) == [carol]
    listed = merchant.api.all_deletions()
    assert sorted(d["kf_account"] for d in listed) == [alice, bob]


@dataclass(frozen=True)
class Case:
    target: str = "alice"  # which account to delete ("nobody" does not exist)
    faults: tuple[dict[str, Any], ...] = ()
    kf_enabled: bool = True
    status: str = "succeeded"
    reason: str = ""
    errcode: int | None = 0
    attempts: int | None = 1
    del_errcodes: tuple[int | None, ...] = (0,)
    token_refreshes: int = 0
    account_remains: bool = False
    re_reads_permissions: bool = False


CASES = {
    "65401-on-a-first-attempt-fails-invalid_kf_account-and-is-not-retried": Case(
        target="nobody", status="failed", reason="invalid_kf_account", errcode=65401, del_errcodes=(65401,)
    ),
    "65400-fails-kf_not_enabled": Case(
        faults=({"errcode": 65400},),
        status="failed",
        reason="kf_not_enabled",
        errcode=65400,
        del_errcodes=(65400,),
        account_remains=True,
    ),
    "an-account-without-new-kf-fails-kf_not_enabled": Case(
        kf_enabled=False,
        status="failed",
        reason="kf_not_enabled",
        errcode=65400,
        del_errcodes=(65400,),
        account_remains=True,
    ),
    "minus-1-once-then-success-succeeds-on-attempt-2": Case(
        faults=({"errcode": -1},), attempts=2, del_errcodes=(-1, 0)
    ),
    "45011-once-then-success-succeeds-on-attempt-2": Case(
        faults=({"errcode": 45011},), attempts=2, del_errcodes=(45011, 0)
    ),
    "http-502-once-then-success-succeeds-on-attempt-2": Case(
        faults=({"http_status": 502},), attempts=2, del_errcodes=(None, 0)
    ),
    "42001-refreshes-the-token-once-and-succeeds": Case(
        faults=({"errcode": 42001},), attempts=None, del_errcodes=(42001, 0), token_refreshes=1
    ),
    "an-answer-lost-after-the-delete-then-65401-succeeds-as-already-gone": Case(
        faults=({"garbage": "truncated"},), reason="already_gone", errcode=65401, attempts=2, del_errcodes=(None, 65401)
    ),
    "61007-fails-permission_denied-and-permissions-are-re-read": Case(
        faults=({"errcode": 61007},),
        status="failed",
        reason="permission_denied",
        errcode=61007,
        del_errcodes=(61007,),
        account_remains=True,
        re_reads_permissions=True,
    ),
    "minus-1-every-time-fails-upstream_unavailable-after-5-attempts": Case(
        faults=({"errcode": -1, "times": 5},),
        status="failed",
        reason="upstream_unavailable",
        errcode=-1,
        attempts=5,
        del_errcodes=(-1,) * 5,
        account_remains=True,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_deletion_ends_in_the_documented_state(stack: Stack, case: Case) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"), kf_enabled=case.kf_enabled)
    target = merchant.account(case.target)
    for fault in case.faults:
        sandbox.fault(path=DEL, appid=merchant.appid, **fault)
    mark = sandbox.mark()

    deletion = merchant.api.request_deletion(target)
    done = merchant.api.wait_deletion(deletion["id"], timeout=60)

    assert (done["status"], done["reason"], done["errcode"]) == (case.status, case.reason, case.errcode), done
    if case.attempts is not None:
        assert done["attempts"] == case.attempts, done
    assert tuple(c["errcode"] for c in del_calls(sandbox, merchant.appid, since=mark)) == case.del_errcodes
    assert len(sandbox.calls(path=AUTHORIZER_TOKEN, appid=merchant.appid, since=mark)) == case.token_refreshes
    assert (target in sandbox.kf_accounts(merchant.appid)) is case.account_remains
    if case.re_reads_permissions:
        eventually(
            lambda: sandbox.calls(path=AUTHORIZER_INFO, appid=merchant.appid, since=mark),
            lambda calls: len(calls) == 1,
            timeout=30,
            what="the merchant's permissions to be re-read",
        )


def test_45009_pauses_the_merchant_until_its_quota_resets_without_further_calls(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"))
    sandbox.fault(path=DEL, appid=merchant.appid, errcode=45009)
    mark = sandbox.mark()

    first = merchant.api.request_deletion(merchant.kf[0])
    first = merchant.api.wait_deletion(
        first["id"], lambda d: d["reason"] == "quota_exhausted", what="the deletion to wait for the quota"
    )
    second = merchant.api.request_deletion(merchant.kf[1])
    second = merchant.api.wait_deletion(
        second["id"], lambda d: d["reason"] == "quota_exhausted", what="the second deletion to wait for the quota too"
    )

    assert (first["status"], first["errcode"], first["attempts"]) == ("pending", 45009, 1), first
    assert (second["status"], second["attempts"]) == ("pending", 0), second  # never sent
    stack.wait_for_sweeps(2)
    assert [c["errcode"] for c in del_calls(sandbox, merchant.appid, since=mark)] == [45009]
    assert [merchant.api.deletion(d["id"])["status"] for d in (first, second)] == ["pending", "pending"]
    assert sorted(sandbox.kf_accounts(merchant.appid)) == sorted(merchant.kf)


def test_61003_on_the_delete_fails_authorization_revoked_and_marks_the_merchant_revoked(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"))
    sandbox.fault(path=DEL, appid=merchant.appid, errcode=61003)
    mark = sandbox.mark()

    deletion = merchant.api.request_deletion(merchant.kf[0])
    done = merchant.api.wait_deletion(deletion["id"])

    assert (done["status"], done["reason"], done["errcode"]) == ("failed", "authorization_revoked", 61003), done
    account = merchant.api.authorizer()
    assert account["status"] == "revoked" and account["eligible"] is False
    assert [r["code"] for r in account["reasons"]] == ["authorization_revoked"]
    refused = merchant.api.post("/api/v1/deletions/", {"kf_account": merchant.kf[1]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_eligible"
    assert [c["errcode"] for c in del_calls(sandbox, merchant.appid, since=mark)] == [61003]


def test_unauthorized_during_the_delete_call_fails_authorization_revoked(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice",))
    sandbox.fault(path=DEL, appid=merchant.appid, latency_ms=2500)
    mark = sandbox.mark()

    deletion = merchant.api.request_deletion(merchant.kf[0])
    eventually(
        sandbox.stats,
        lambda s: s["in_flight"].get(merchant.appid, 0) >= 1,
        timeout=30,
        interval=0.05,
        what="the delete call to reach WeChat",
    )
    sandbox.control("POST", "/unauthorize", {"appid": merchant.appid, "wait_push": True})
    done = merchant.api.wait_deletion(deletion["id"])

    # WeChat refuses the call with the dead token; the platform learns the authorization is gone.
    assert (done["status"], done["reason"]) == ("failed", "authorization_revoked"), done
    assert [c["errcode"] for c in del_calls(sandbox, merchant.appid, since=mark)] == [40001]
    assert sandbox.kf_accounts(merchant.appid) == merchant.kf
    assert merchant.api.authorizer()["status"] == "revoked"


def test_unauthorized_while_a_deletion_waits_for_a_worker_fails_it_authorization_revoked_without_a_call(
    stack: Stack,
) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice",))
    mark = sandbox.mark()
    stack.stop_worker()
    try:
        deletion = merchant.api.request_deletion(merchant.kf[0])
        assert deletion["status"] == "pending"
        sandbox.control("POST", "/unauthorize", {"appid": merchant.appid, "wait_push": True})
    finally:
        stack.start_worker()
    done = merchant.api.wait_deletion(deletion["id"])

    # An accepted request the merchant's revocation made impossible: failed, with the reason that says so.
    assert (done["status"], done["reason"]) == ("failed", "authorization_revoked"), done
    assert del_calls(sandbox, merchant.appid, since=mark) == []
    assert sandbox.kf_accounts(merchant.appid) == merchant.kf


def test_same_idempotency_key_and_body_get_the_same_deletions_and_one_call_each(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob", "carol"))
    mark = sandbox.mark()
    body = {"kf_accounts": merchant.kf[:2]}
    headers = {"Idempotency-Key": "e2e-retry-1"}

    first = merchant.api.post("/api/v1/deletions/", body, headers=headers)
    again = merchant.api.post("/api/v1/deletions/", body, headers=headers)
    other_body = merchant.api.post("/api/v1/deletions/", {"kf_accounts": merchant.kf[1:]}, headers=headers)

    assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
    ids = [d["id"] for d in first.json()["deletions"]]
    assert [d["id"] for d in again.json()["deletions"]] == ids
    assert other_body.status_code == 422 and other_body.json()["error"]["code"] == "idempotency_conflict"
    for deletion_id in ids:
        assert merchant.api.wait_deletion(deletion_id)["status"] == "succeeded"
    # Nothing was done twice: one call per account, the third account untouched.
    assert sorted(c["body"]["kf_account"] for c in del_calls(sandbox, merchant.appid, since=mark)) == merchant.kf[:2]
    assert sorted(sandbox.kf_accounts(merchant.appid)) == [merchant.kf[2]]
    assert len(merchant.api.all_deletions()) == 2
