from __future__ import annotations

import time

import pytest
import requests

from sandbox import seed

from .conftest import Client

DEL = "/customservice/kfaccount/del"


def _fault(client: Client, **fault: object) -> dict:
    return client.control("POST", "/faults", {"path": DEL, **fault})


@pytest.mark.parametrize("errcode", [-1, 45009, 45011, 42001, 65400, 40001])
def test_an_injected_errcode_answers_once_and_does_nothing(client: Client, errcode: int) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, errcode=errcode)
    answer = client.kf_del(token, "alice@lotustea")
    assert answer["errcode"] == errcode
    assert " rid: " in answer["errmsg"]
    assert client.kf_del(token, "alice@lotustea") == {"errcode": 0, "errmsg": "ok"}  # it was not deleted before


def test_faults_are_consumed_in_order_and_times_counts(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, errcode=-1, times=2)
    _fault(client, errcode=45011)
    outcomes = [client.kf_del(token, "alice@lotustea")["errcode"] for _ in range(4)]
    assert outcomes == [-1, -1, 45011, 0]
    assert client.control("GET", "/faults")["faults"] == []


def test_a_fault_for_one_authorizer_spares_the_others(client: Client) -> None:
    lotus = client.authorizer_token(seed.LOTUS_TEA)
    harbor = client.authorizer_token(seed.HARBOR_LOGISTICS)
    _fault(client, errcode=-1, appid=seed.LOTUS_TEA)
    assert client.kf_del(harbor, "dispatch@harborlogistics")["errcode"] == 0
    assert client.kf_del(lotus, "alice@lotustea")["errcode"] == -1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_status_faults(client: Client, status: int) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, http_status=status)
    response = client.post(DEL, {"kf_account": "alice@lotustea"}, access_token=token)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("kind", ["html", "text", "empty"])
def test_garbage_bodies_are_not_json(client: Client, kind: str) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, garbage=kind)
    response = client.post(DEL, {"kf_account": "alice@lotustea"}, access_token=token)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0  # not applied


def test_a_truncated_answer_hides_a_deletion_that_happened(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, garbage="truncated")
    response = client.post(DEL, {"kf_account": "alice@lotustea"}, access_token=token)
    with pytest.raises(ValueError):
        response.json()
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 65401


def test_a_timeout_applies_the_call_and_answers_too_late(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, timeout=True, seconds=1.5)
    with pytest.raises(requests.Timeout):
        client.http.post(
            f"{client.url}{DEL}", params={"access_token": token}, json={"kf_account": "alice@lotustea"}, timeout=0.3
        )
    # The retry finds the account gone: the platform must read 65401 after an unknown outcome as done.
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 65401


def test_a_timeout_that_was_not_applied_ends_in_system_error(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, timeout=True, seconds=0.2, applied=False)
    assert client.kf_del(token, "alice@lotustea")["errcode"] == -1
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0


def test_latency_faults_and_standing_latency(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, latency_ms=300)
    started = time.monotonic()
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0
    assert time.monotonic() - started >= 0.3
    client.control("POST", "/latency", {"path": "/cgi-bin/customservice/getkflist", "ms": 200})
    started = time.monotonic()
    client.kf_list(token)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    client.kf_del(token, "bob@lotustea")
    assert time.monotonic() - started < 0.2
    assert client.control("DELETE", "/latency") == {"latency": {}}


def test_injected_outcomes_are_in_the_call_log(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, errcode=45011)
    _fault(client, http_status=503)
    client.kf_del(token, "alice@lotustea")
    client.post(DEL, {"kf_account": "alice@lotustea"}, access_token=token)
    calls = client.control("GET", "/calls", path=DEL)["calls"]
    assert [(c["errcode"], c["http_status"], c["fault"]) for c in calls] == [
        (45011, 200, "errcode:45011"),
        (None, 503, "http_status:503"),
    ]
    assert all(c["authorizer_appid"] == seed.LOTUS_TEA for c in calls)


@pytest.mark.parametrize(
    "bad",
    [
        {"errcode": -1},  # no path
        {"path": DEL},  # nothing to inject
        {"path": DEL, "errcode": -1, "http_status": 500},
        {"path": DEL, "garbage": "xml"},
        {"path": DEL, "http_status": 200},
        {"path": DEL, "errcode": -1, "times": 0},
    ],
)
def test_bad_fault_requests_are_400(client: Client, bad: dict) -> None:
    response = client.http.post(client.url + "/sandbox/faults", json=bad, timeout=5)
    assert response.status_code == 400
    assert "error" in response.json()


def test_faults_can_be_cleared(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    _fault(client, errcode=-1, times=5)
    client.control("DELETE", "/faults")
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 0


def test_chaos_faults_a_share_of_the_calls_until_it_is_ended(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", "/accounts/" + seed.LOTUS_TEA + "/kf", {"generate": 200, "prefix": "chaos"})
    client.control(
        "POST", "/chaos", {"path": DEL, "rate": 0.3, "faults": [{"errcode": -1}, {"errcode": 45011}], "seed": 1}
    )
    answers = [client.kf_del(token, f"chaos{n}@lotustea")["errcode"] for n in range(1, 101)]
    faulted = [a for a in answers if a != 0]
    assert set(faulted) <= {-1, 45011}
    assert 15 <= len(faulted) <= 45  # 30 % of 100, give or take chance
    assert client.control("GET", "/chaos")["chaos"][DEL]["rate"] == 0.3
    client.control("DELETE", "/chaos")
    assert [client.kf_del(token, f"chaos{n}@lotustea")["errcode"] for n in range(101, 111)] == [0] * 10


def test_chaos_refuses_a_rate_outside_0_to_1(client: Client) -> None:
    response = client.http.post(
        f"{client.url}/sandbox/chaos", json={"path": DEL, "rate": 2, "faults": [{"errcode": -1}]}
    )
    assert response.status_code == 400
