"""Issue 2 end to end: the verify-ticket push, the authorization flow, tokens at rest, revocation.

WeChat is the sandbox process; it pushes encrypted events to the platform's events URL itself.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.harness import AUTHORIZER_TOKEN, Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

COMPONENT_TOKEN = "/cgi-bin/component/api_component_token"
PREAUTH = "/cgi-bin/component/api_create_preauthcode"
GETKFLIST = "/cgi-bin/customservice/getkflist"
_CDATA = r"<{}><!\[CDATA\[(.*?)\]\]></{}>"


def _pushed(field: str, plaintext: str) -> str | None:
    match = re.search(_CDATA.format(field, field), plaintext)
    return match.group(1) if match else None


def test_pushed_verify_ticket_is_stored_encrypted_and_the_newest_one_derives_the_component_token(stack: Stack) -> None:
    sandbox, db = stack.sandbox, stack.db
    component_appid = stack.env["WECHAT_COMPONENT_APPID"]
    # The platform holds a component token (derived from the ticket pushed at start-up) ...
    assert stack.web.get("/wechat/authorize/").status_code == 200
    pushed_before = max((p["seq"] for p in sandbox.pushes()), default=0)

    # ... when WeChat pushes a new ticket.

    answer = sandbox.control("POST", "/push_ticket")  # delivered before the sandbox answers

    assert answer["delivered"] is True
    (push,) = [p for p in sandbox.pushes(since=pushed_before) if p["info_type"] == "component_verify_ticket"]
    assert push["attempts"][-1]["status"] == 200 and push["attempts"][-1]["answer"] == "success"
    ticket = answer["ticket"]
    assert _pushed("ComponentVerifyTicket", push["plaintext"]) == ticket
    ((ciphertext, received_at),) = db.rows(
        "SELECT verify_ticket_ciphertext, ticket_received_at FROM authorizers_componentcredential "
        "WHERE component_appid = %s",
        component_appid,
    )
    assert ciphertext and received_at is not None
    assert ticket not in ciphertext
    events = db.rows("SELECT state, fields FROM authorizers_componentevent WHERE info_type = 'component_verify_ticket'")
    assert events and all(state == "processed" for state, _ in events)
    assert all(ticket not in str(fields) for _, fields in events)

    # WeChat drops the component token: the platform must derive a new one, from the newest ticket.
    sandbox.control("POST", "/expire", {"what": "component"})
    mark = sandbox.mark()
    start = stack.web.get("/wechat/authorize/")

    assert start.status_code == 200, start.text[:500]
    (token_call,) = sandbox.calls(path=COMPONENT_TOKEN, since=mark)
    assert token_call["method"] == "POST"
    assert token_call["body"]["component_verify_ticket"] == ticket
    assert token_call["body"]["component_appid"] == component_appid
    assert [c["errcode"] for c in sandbox.calls(path=PREAUTH, since=mark)] == [42001, 0]


def test_authorization_flow_keeps_the_granted_sets_and_no_token_in_plaintext(stack: Stack) -> None:
    sandbox, db = stack.sandbox, stack.db
    mark = sandbox.mark()
    pushed_before = max((p["seq"] for p in sandbox.pushes()), default=0)

    merchant = stack.new_merchant(kind="service", func=(1, 2, 6, 15), kf=("alice", "bob"))

    account = merchant.api.authorizer()
    assert account["appid"] == merchant.appid
    assert account["kind"] == "service" and account["certified"] is True
    assert account["granted_permission_sets"] == [1, 2, 6, 15]
    assert account["status"] == "active" and account["eligible"] is True and account["reasons"] == []
    assert [c["errcode"] for c in sandbox.calls(path="/cgi-bin/component/api_query_auth", since=mark)][:1] == [0]

    # Make the platform use its access token (a sync reads getkflist), then refresh it: WeChat
    # expires the token, the next sync gets 42001, refreshes with the refresh token and retries.
    assert merchant.api.post("/api/v1/kf-accounts/sync/").status_code == 202
    listed = eventually(
        lambda: merchant.api.get("/api/v1/kf-accounts/").json()["results"],
        lambda rows: len(rows) == 2,
        timeout=30,
        what="the kf-account mirror",
    )
    assert sorted(row["kf_account"] for row in listed) == sorted(merchant.kf)
    sandbox.control("POST", "/expire", {"what": "authorizer", "appid": merchant.appid})
    assert merchant.api.post("/api/v1/kf-accounts/sync/").status_code == 202
    reads = eventually(
        lambda: sandbox.calls(path=GETKFLIST, appid=merchant.appid, since=mark),
        lambda calls: [c["errcode"] for c in calls] == [0, 42001, 0],
        timeout=30,
        what="a sync, a rejected sync and its retry",
    )
    (refresh,) = sandbox.calls(path=AUTHORIZER_TOKEN, appid=merchant.appid, since=mark)
    assert refresh["errcode"] == 0

    # Every secret WeChat and the platform handed out in this flow. (Not the pre-auth code: it is
    # spent by the time the `authorized` push repeats it, and the push's fields are kept.)
    secrets = {
        "access token (first)": reads[0]["query"]["access_token"],
        "access token (refreshed)": reads[2]["query"]["access_token"],
        "refresh token": refresh["body"]["authorizer_refresh_token"],
        "authorization code": merchant.authorization["auth_code"],
        "API key": merchant.key,
    }
    assert secrets["access token (first)"] != secrets["access token (refreshed)"]
    for call in sandbox.calls(since=mark):
        if "component_access_token" in call["query"]:
            secrets[f"component token ({call['seq']})"] = call["query"]["component_access_token"]
    for push in sandbox.pushes():
        if push["seq"] > pushed_before or push["info_type"] == "component_verify_ticket":
            for name in ("ComponentVerifyTicket", "AuthorizationCode"):
                if value := _pushed(name, push["plaintext"]):
                    secrets[f"{name} (push {push['seq']})"] = value
    assert all(len(value) >= 16 for value in secrets.values()), secrets.keys()

    ((refresh_ct, access_ct),) = db.rows(
        "SELECT refresh_token_ciphertext, access_token_ciphertext FROM authorizers_authorizer WHERE appid = %s",
        merchant.appid,
    )
    assert refresh_ct and access_ct  # stored, as ciphertext
    assert db.table_count() >= 10
    found = sorted(
        {
            (table, column, name)
            for table, column, value in db.text_cells()
            for name, secret in secrets.items()
            if secret in value
        }
    )
    assert found == [], f"plaintext secrets in the database: {found}"


def test_unauthorized_push_revokes_the_merchant_and_authorizing_again_restores_it(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=("alice", "bob"))
    mark = sandbox.mark()

    answer = sandbox.control("POST", "/unauthorize", {"appid": merchant.appid, "wait_push": True})

    assert answer == {"appid": merchant.appid, "was_authorized": True, "delivered": True}
    account = merchant.api.authorizer()
    assert account["status"] == "revoked" and account["eligible"] is False
    assert "authorization_revoked" in [reason["code"] for reason in account["reasons"]]
    for response in (
        merchant.api.post("/api/v1/deletions/", {"kf_account": merchant.kf[0]}),
        merchant.api.delete(f"/api/v1/kf-accounts/{merchant.kf[0]}/"),
        merchant.api.post("/api/v1/deletions/", {"kf_accounts": merchant.kf}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "not_eligible"
    assert merchant.api.all_deletions() == []

    # The merchant authorizes again (an `authorized` push and the browser's return) ...
    assert stack.authorize(merchant.appid, [1, 6])["info_type"] == "authorized"
    account = merchant.api.authorizer()
    assert account["status"] == "active" and account["eligible"] is True
    assert account["granted_permission_sets"] == [1, 6]
    # ... then changes its grants; only the `updateauthorized` push tells the platform.
    assert stack.authorize(merchant.appid, [1, 2, 6], follow_redirect=False)["info_type"] == "updateauthorized"
    eventually(
        merchant.api.authorizer,
        lambda a: a["granted_permission_sets"] == [1, 2, 6],
        timeout=30,
        what="the updateauthorized push to be applied",
    )

    # Deleting works again, with a token from the new authorization.
    deletion = merchant.api.request_deletion(merchant.kf[0])
    done = merchant.api.wait_deletion(deletion["id"])
    assert done["status"] == "succeeded", done
    (call,) = del_calls(sandbox, merchant.appid, since=mark)
    assert call["errcode"] == 0 and call["body"] == {"kf_account": merchant.kf[0]}

    # An update can also take the kf permission sets away: then the platform refuses, WeChat hears nothing.
    stack.authorize(merchant.appid, [2, 15], follow_redirect=False)
    account = eventually(
        merchant.api.authorizer,
        lambda a: a["granted_permission_sets"] == [2, 15],
        timeout=30,
        what="the second updateauthorized push to be applied",
    )
    assert account["eligible"] is False and [r["code"] for r in account["reasons"]] == ["missing_permission"]
    refused = merchant.api.post("/api/v1/deletions/", {"kf_account": merchant.kf[1]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_eligible"
    assert len(del_calls(sandbox, merchant.appid, since=mark)) == 1


def test_authorization_codes_and_states_never_reach_the_access_log(stack: Stack) -> None:
    merchant = stack.new_merchant(kind="service", func=(1, 6), kf=())
    code = merchant.authorization["auth_code"]
    callback = merchant.authorization["redirect"]
    state = urlsplit(callback).path.rstrip("/").rsplit("/", 1)[1]
    assert quote(code, safe="") in callback and len(state) > 20
    web_log = stack.procs["web"].log_path
    assert web_log is not None
    text = web_log.read_text(errors="replace")
    assert '"GET /wechat/authorize/callback/-/ HTTP/1.1" 200' in text  # the request is logged ...
    assert code not in text and quote(code, safe="") not in text  # ... without its query
    assert "auth_code=" not in text and state not in text  # ... and without the state in its path
    assert "msg_signature=" not in text


def test_the_callback_and_the_push_exchange_the_code_once(stack: Stack) -> None:
    mark = stack.sandbox.mark()
    merchant = stack.new_merchant(kind="service", func=(1, 6), kf=())
    exchanges = stack.sandbox.calls(path="/cgi-bin/component/api_query_auth", since=mark)
    assert [c["errcode"] for c in exchanges] == [0]  # never a second exchange answered 61009
    ((state, count),) = stack.db.rows(
        "SELECT e.state, count(*) FROM authorizers_authorizationcodeexchange e "
        "JOIN authorizers_authorizer a ON a.id = e.authorizer_id WHERE a.appid = %s GROUP BY e.state",
        merchant.appid,
    )
    assert (state, count) == ("succeeded", 1)
