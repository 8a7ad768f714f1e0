"""Pushes checked by a stand-in platform that verifies and decrypts them with WXBizMsgCrypt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox import seed
from sandbox.app import Sandbox

from .conftest import Client, FakeClock, PushReceiver, start_sandbox


@pytest.fixture
def pushing(clock: FakeClock, receiver: PushReceiver) -> Iterator[Client]:
    """A sandbox that pushes to the receiver; its ticket loop is off (a very long interval after the first)."""
    sandbox = start_sandbox(clock, push_url=receiver.url, ticket_interval=3600)
    receiver.wait_for(1)  # the ticket pushed at start
    client = Client(sandbox)
    yield client
    sandbox.shutdown()


def test_a_ticket_is_pushed_at_start_encrypted_and_signed(
    pushing: Client, receiver: PushReceiver, clock: FakeClock
) -> None:
    push = receiver.wait_for(1)[0]
    assert receiver.problems == []
    assert push.content_type == "text/xml"
    assert set(push.params) == {"signature", "timestamp", "nonce", "encrypt_type", "msg_signature"}
    assert push.body.startswith(b"<xml><AppId><![CDATA[" + seed.DEMO_COMPONENT_APPID.encode())
    assert push.fields["AppId"] == seed.DEMO_COMPONENT_APPID
    assert push.fields["InfoType"] == "component_verify_ticket"
    assert push.fields["ComponentVerifyTicket"].startswith("ticket@@@")
    assert int(push.fields["CreateTime"]) == int(clock.now)


def test_the_pushed_ticket_buys_a_component_token(pushing: Client, receiver: PushReceiver) -> None:
    ticket = receiver.wait_for(1)[0].fields["ComponentVerifyTicket"]
    answer = pushing.post(
        "/cgi-bin/component/api_component_token",
        {
            "component_appid": seed.DEMO_COMPONENT_APPID,
            "component_appsecret": seed.DEMO_COMPONENT_APPSECRET,
            "component_verify_ticket": ticket,
        },
    ).json()
    assert "component_access_token" in answer


def test_push_ticket_control_reports_delivery(pushing: Client, receiver: PushReceiver) -> None:
    answer = pushing.control("POST", "/push_ticket")
    assert answer["delivered"] is True
    assert receiver.wait_for(2)[-1].fields["ComponentVerifyTicket"] == answer["ticket"]


def test_api_start_push_ticket_pushes_a_ticket(pushing: Client, receiver: PushReceiver) -> None:
    body = {"component_appid": seed.DEMO_COMPONENT_APPID, "component_secret": seed.DEMO_COMPONENT_APPSECRET}
    assert pushing.post("/cgi-bin/component/api_start_push_ticket", body).json()["errcode"] == 0
    assert receiver.wait_for(2)[-1].fields["InfoType"] == "component_verify_ticket"


def test_confirming_the_page_pushes_authorized_with_the_same_code(
    pushing: Client, receiver: PushReceiver, clock: FakeClock
) -> None:
    token = pushing.component_token()
    code = pushing.pre_auth_code(token)
    redirect = pushing.post(
        "/cgi-bin/componentloginpage/confirm",
        data={
            "component_appid": seed.DEMO_COMPONENT_APPID,
            "pre_auth_code": code,
            # On the registered domain (the push URL's host:port), as WeChat requires.
            "redirect_uri": f"{receiver.url.rstrip('/')}/cb/",
            "appid": seed.LOTUS_TEA,
            "func": ["1", "6"],
        },
    ).headers["Location"]
    event = receiver.wait_for(3)[-1].fields  # start ticket, component_token's ticket, the event
    assert receiver.problems == []
    assert event["InfoType"] == "authorized"
    assert event["AuthorizerAppid"] == seed.LOTUS_TEA
    assert event["PreAuthCode"] == code
    assert parse_qs(urlsplit(redirect).query)["auth_code"] == [event["AuthorizationCode"]]
    assert int(event["AuthorizationCodeExpiredTime"]) == int(clock.now) + 600
    assert set(event) == {
        "AppId",
        "CreateTime",
        "InfoType",
        "AuthorizerAppid",
        "AuthorizationCode",
        "AuthorizationCodeExpiredTime",
        "PreAuthCode",
    }


def test_update_and_unauthorize_events(pushing: Client, receiver: PushReceiver) -> None:
    first = pushing.control("POST", "/authorize", {"appid": seed.HARBOR_LOGISTICS, "func": [1], "wait_push": True})
    assert first["delivered"] is True
    second = pushing.control("POST", "/authorize", {"appid": seed.HARBOR_LOGISTICS, "func": [1, 6], "wait_push": True})
    assert second["info_type"] == "updateauthorized" and second["delivered"] is True
    gone = pushing.control("POST", "/unauthorize", {"appid": seed.HARBOR_LOGISTICS, "wait_push": True})
    assert gone["delivered"] is True
    types = [p.fields["InfoType"] for p in receiver.wait_for(4)[1:]]
    assert types == ["authorized", "updateauthorized", "unauthorized"]
    unauthorized = receiver.of_type("unauthorized")[0].fields
    assert set(unauthorized) == {"AppId", "CreateTime", "InfoType", "AuthorizerAppid"}
    # The authorized event's code for an account authorized from outside still has a PreAuthCode.
    assert receiver.of_type("authorized")[0].fields["PreAuthCode"].startswith("preauthcode@@@")
    assert receiver.problems == []


def test_a_push_is_retried_three_times_until_success(pushing: Client, receiver: PushReceiver) -> None:
    receiver.answers = ["", "fail", "success"]
    assert pushing.control("POST", "/push_ticket")["delivered"] is True
    log = pushing.control("GET", "/pushes")["pushes"][-1]
    assert [a.get("answer") for a in log["attempts"]] == ["", "fail", "success"]

    receiver.answers = ["no"] * 4
    assert pushing.control("POST", "/push_ticket")["delivered"] is False
    assert len(pushing.control("GET", "/pushes")["pushes"][-1]["attempts"]) == 4  # one try and three retries


def test_the_first_ticket_is_offered_every_second_until_accepted(clock: FakeClock, receiver: PushReceiver) -> None:
    receiver.answers = ["not yet", "not yet"]
    sandbox: Sandbox = start_sandbox(clock, push_url=receiver.url, ticket_interval=3600)
    try:
        pushes = receiver.wait_for(3, timeout=5)
        assert len({p.fields["ComponentVerifyTicket"] for p in pushes}) == 1
        client = Client(sandbox)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the receiver answers before the sandbox notes the answer
            log = client.control("GET", "/pushes")["pushes"]
            if len(log) == 3 and log[-1]["delivered"]:
                break
            time.sleep(0.02)
        assert [entry["delivered"] for entry in log] == [False, False, True]
    finally:
        sandbox.shutdown()


def test_the_first_ticket_push_can_be_delayed(clock: FakeClock, receiver: PushReceiver) -> None:
    """--first-push-delay: WeChat (or a loaded machine) that takes its time with the first ticket."""
    started = time.monotonic()
    sandbox: Sandbox = start_sandbox(clock, push_url=receiver.url, ticket_interval=3600, first_push_delay=1.5)
    try:
        (push,) = receiver.wait_for(1, timeout=30)
        assert time.monotonic() - started >= 1.5
        assert push.fields["InfoType"] == "component_verify_ticket"
    finally:
        sandbox.shutdown()


def test_first_push_delay_comes_from_the_flag_or_the_environment() -> None:
    from sandbox import cli

    assert cli.config_from_options({}, environ={"SANDBOX_FIRST_PUSH_DELAY": "90"}).first_push_delay == 90.0
    assert cli.config_from_options({"first_push_delay": 5.0}, environ={}).first_push_delay == 5.0
    with pytest.raises(SystemExit):
        cli.config_from_options({"first_push_delay": -1.0}, environ={})


def test_without_a_push_url_nothing_is_pushed(client: Client) -> None:
    assert client.control("POST", "/push_ticket")["delivered"] is False
    assert client.control("GET", "/pushes")["pushes"][-1]["attempts"][0]["error"] == "no push URL configured"
