"""Issue 16 end to end: the sandbox answers as strictly as WeChat, and the platform reads it right.

Each test is one point of "How it is shown": a merchant whose refresh token WeChat invalidated while
it is still authorized recovers (61023); 45011 for the rest of a minute defers, nothing fails, the
retries land in the next minute; 61005 until a new ticket holds deletions, then they succeed; 40164
holds a merchant's deletions with a readable reason; the redirect_uri has no query to mangle.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.harness import DEL, Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

TOKEN = "/cgi-bin/component/api_authorizer_token"
INFO = "/cgi-bin/component/api_get_authorizer_info"
COMPONENT_TOKEN = "/cgi-bin/component/api_component_token"
START_PUSH = "/cgi-bin/component/api_start_push_ticket"
# Held deletions look again every minute, after the platform probe; allow for a loaded machine.
HOLD_RELEASE_TIMEOUT = 300


def _open_alerts(stack: Stack, appid: str = "") -> list[tuple[str, int | None, str]]:
    return [
        (code, errcode, message)
        for code, errcode, message in stack.db.rows(
            "SELECT code, errcode, message FROM authorizers_platformalert "
            "WHERE cleared_at IS NULL AND authorizer_appid = %s",
            appid,
        )
    ]


def test_a_merchant_whose_refresh_token_wechat_invalidated_recovers_and_its_deletion_succeeds(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice",))
    # WeChat invalidates the refresh token the platform holds; the merchant stays authorized.
    sandbox.control("POST", f"/accounts/{merchant.appid}/invalidate_refresh_token")
    sandbox.control("POST", "/expire", {"what": "authorizer", "appid": merchant.appid})
    stack.db.make_access_token_stale(merchant.authorizer_id)
    mark = sandbox.mark()

    deletion = merchant.api.request_deletion(merchant.kf[0])
    done = merchant.api.wait_deletion(deletion["id"], timeout=60)

    assert (done["status"], done["errcode"], done["attempts"]) == ("succeeded", 0, 1), done
    refreshes = sandbox.calls(path=TOKEN, appid=merchant.appid, since=mark)
    assert [c["errcode"] for c in refreshes] == [61023, 0]  # refused, then the current one accepted
    assert sandbox.calls(path=INFO, appid=merchant.appid, since=mark)  # read from api_get_authorizer_info
    assert merchant.api.authorizer()["status"] == "active"
    actions = {
        action
        for (action,) in stack.db.rows(
            "SELECT action FROM audit_auditevent WHERE authorizer_appid = %s", merchant.appid
        )
    }
    assert "authorizer.refresh_token_recovered" in actions and "authorizer.revoked" not in actions


def test_45011_for_the_rest_of_a_minute_defers_every_deletion_to_the_next_minute_and_none_fails(
    stack: Stack,
) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("m1", "m2", "m3", "m4"))
    if time.time() % 60 > 45:  # start early in a minute, so "this minute" is not over before the calls
        time.sleep(61 - time.time() % 60)
    sandbox.control("POST", f"/accounts/{merchant.appid}/quota", {"api": "del", "exhaust_minute": True})
    refused_minute = int(time.time() // 60)
    mark = sandbox.mark()

    response = merchant.api.post("/api/v1/deletions/", {"kf_accounts": merchant.kf})
    assert response.status_code == 202, response.text
    ids = [d["id"] for d in response.json()["deletions"]]
    finished = eventually(
        merchant.api.all_deletions,
        lambda ds: len(ds) == 4 and all(d["status"] in ("succeeded", "failed") for d in ds),
        timeout=180,
        what="every deletion to end after the minute's limit",
    )
    assert sorted(ids) == sorted(d["id"] for d in finished)
    assert {d["attempts"] for d in finished} <= {1, 2}  # a deferral is not a failure: no retry budget burnt
    assert {d["status"] for d in finished} == {"succeeded"}, finished
    calls = del_calls(sandbox, merchant.appid, since=mark)
    refused = [c for c in calls if c["errcode"] == 45011]
    accepted = [c for c in calls if c["errcode"] == 0]
    assert refused and len(accepted) == 4
    assert {int(c["at"] // 60) for c in refused} == {refused_minute}  # no retry within the refused minute
    assert all(int(c["at"] // 60) > refused_minute for c in accepted)  # the retries land in the next one
    assert sandbox.kf_accounts(merchant.appid) == []


def test_61005_until_a_new_ticket_holds_deletions_then_they_succeed(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"))
    # The merchant's token needs a refresh, which needs a new component token, which WeChat refuses
    # with 61005 until the platform has a new ticket.
    sandbox.control("POST", "/expire", {"what": "authorizer", "appid": merchant.appid})
    sandbox.control("POST", "/expire", {"what": "component"})
    stack.db.make_access_token_stale(merchant.authorizer_id)
    past = "now() - interval '1 hour'" if stack.db.is_postgres else "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')"
    stack.db.execute(f"UPDATE authorizers_componentcredential SET access_token_expires_at = {past}")
    # WeChat keeps answering 61005 until the platform holds a new ticket. The fault stands for as many
    # calls as anyone makes: the scheduler's jobs (a merchant re-read, a token refresh) also need a
    # component token and would otherwise take a one-time fault before this merchant's deletion does.
    sandbox.fault(path=COMPONENT_TOKEN, errcode=61005, times=10_000)
    mark = sandbox.mark()

    ids = [merchant.api.request_deletion(account)["id"] for account in merchant.kf]
    held = merchant.api.wait_deletion(ids[0], lambda d: d["reason"] == "platform_held", timeout=60, what="a hold")
    assert held["status"] == "pending" and held["finished_at"] is None
    assert {code for code, _, _ in _open_alerts(stack)} & {"component_ticket_invalid", "verify_ticket_missing"}
    # The new ticket arrives: WeChat accepts the component token request again.
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/push_ticket")
    for deletion_id in ids:
        done = merchant.api.wait_deletion(deletion_id, timeout=HOLD_RELEASE_TIMEOUT, what="the held deletion to run")
        assert (done["status"], done["errcode"]) == ("succeeded", 0), done
    assert next(c["errcode"] for c in sandbox.calls(path=COMPONENT_TOKEN, since=mark)) == 61005
    assert sandbox.calls(path=START_PUSH, since=mark)  # the platform asked WeChat for a new ticket
    assert _open_alerts(stack) == []  # released when the cause cleared
    assert sandbox.kf_accounts(merchant.appid) == []


def test_40164_holds_the_merchants_deletion_with_a_reason_staff_can_read(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice",))
    sandbox.fault(path=DEL, appid=merchant.appid, errcode=40164, times=1)
    deletion = merchant.api.request_deletion(merchant.kf[0])
    held = merchant.api.wait_deletion(
        deletion["id"], lambda d: d["reason"] == "merchant_held", timeout=60, what="the merchant hold"
    )
    assert (held["status"], held["errcode"], held["finished_at"]) == ("pending", 40164, None)
    assert held["errmsg"]  # WeChat's own words beside the reason
    ((code, errcode, message),) = _open_alerts(stack, merchant.appid)
    assert (code, errcode) == ("merchant_ip_not_whitelisted", 40164) and "40164" in message
    assert _open_alerts(stack) == []  # the merchant's problem: no platform alert, nobody else is held
    assert sandbox.kf_accounts(merchant.appid) == merchant.kf  # not deleted, not failed: waiting


def test_the_redirect_uri_has_no_query_and_survives_wechats_mangling(stack: Stack) -> None:
    assert stack.sandbox.control("GET", "/behaviour")["redirect_query"] == "escape"  # as WeChat does
    merchant = stack.new_merchant(kf=())
    redirect = urlsplit(merchant.authorization["redirect"])
    assert set(parse_qs(redirect.query)) == {"auth_code", "expires_in"}  # only what WeChat appended
    assert "&amp;" not in redirect.query
    assert redirect.path.startswith("/wechat/authorize/callback/") and len(redirect.path.split("/")) == 6
    assert merchant.api.authorizer()["status"] == "active"  # the callback accepted the state in its path
