from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sandbox import seed

from .conftest import Client

DEL = "/customservice/kfaccount/del"


def test_health(client: Client) -> None:
    assert client.control("GET", "/health") == {"ok": True, "component_appid": client.config.component_appid}


def test_seeded_accounts(client: Client) -> None:
    accounts = {a["appid"]: a for a in client.control("GET", "/accounts")["accounts"]}
    facts = {appid: (a["kind"], a["certified"], a["kf_enabled"], a["authorized"]) for appid, a in accounts.items()}
    assert facts == {
        seed.LOTUS_TEA: ("subscription", True, True, False),
        seed.CORNER_BAKERY: ("subscription", False, True, False),
        seed.HARBOR_LOGISTICS: ("service", True, True, False),
        seed.PANDA_PANTRY: ("mini_program", True, True, False),
        seed.MAPLE_BOOKS: ("subscription", True, False, False),
    }
    assert accounts[seed.HARBOR_LOGISTICS]["service_type"] == 2
    assert accounts[seed.LOTUS_TEA]["kf_count"] == 3


def test_call_log_records_wechat_calls_only(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    start = client.control("GET", "/calls")["last_seq"]
    client.kf_del(token, "alice@lotustea")
    client.control("GET", "/health")
    client.get("/cgi-bin/customservice/getkflist", access_token=token)
    calls = client.control("GET", "/calls", since=start)["calls"]
    assert [c["path"] for c in calls] == [DEL, "/cgi-bin/customservice/getkflist"]
    deletion = calls[0]
    assert deletion["method"] == "POST"
    assert deletion["query"] == {"access_token": token}
    assert deletion["body"] == {"kf_account": "alice@lotustea"}
    assert deletion["authorizer_appid"] == seed.LOTUS_TEA
    assert deletion["errcode"] == 0
    assert deletion["seq"] == start + 1 and isinstance(deletion["at"], float)
    assert client.control("GET", "/calls", since=start, path=DEL)["calls"] == [deletion]
    client.control("DELETE", "/calls")
    assert client.control("GET", "/calls")["calls"] == []


def test_component_calls_are_attributed_to_the_authorizer_in_their_body(client: Client) -> None:
    client.authorize(seed.LOTUS_TEA)
    token = client.component_token()
    client.component("api_get_authorizer_info", {"authorizer_appid": seed.LOTUS_TEA}, token)
    call = client.control("GET", "/calls", path="/cgi-bin/component/api_get_authorizer_info")["calls"][-1]
    assert call["authorizer_appid"] == seed.LOTUS_TEA


def test_stats_count_calls_outcomes_and_concurrency(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", "/latency", {"path": DEL, "ms": 100})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.kf_del(token, "nobody@lotustea"), range(8)))
    stats = client.control("GET", "/stats")
    assert stats["by_path"][DEL] == 8
    assert stats["outcomes"][DEL] == {"65401": 8}
    assert stats["by_appid"][seed.LOTUS_TEA][DEL] == 8
    assert stats["peak_concurrency"][seed.LOTUS_TEA] >= 2
    assert stats["in_flight"] == {}


def test_create_update_and_seed_accounts(client: Client) -> None:
    created = client.control(
        "POST",
        "/accounts",
        {"nick_name": "Test Shop", "kind": "service", "certified": True, "kf_enabled": True, "alias": "testshop"},
    )
    appid = created["appid"]
    assert appid.startswith("wx") and len(appid) == 18
    client.control("POST", f"/accounts/{appid}/kf", {"kf_account": "one@testshop", "kf_nick": "One", "kf_wx": "w1"})
    client.control("POST", f"/accounts/{appid}/kf", {"kf_accounts": [{"kf_account": "two@testshop"}]})
    client.control("POST", f"/accounts/{appid}/kf", {"generate": 3, "prefix": "b"})
    kf = client.control("GET", f"/accounts/{appid}/kf")["kf_list"]
    assert [k["kf_account"] for k in kf] == [
        "one@testshop",
        "two@testshop",
        "b1@testshop",
        "b2@testshop",
        "b3@testshop",
    ]
    assert len({k["kf_id"] for k in kf}) == 5
    assert kf[0]["kf_headimgurl"].startswith(client.url + "/sandbox/avatar/")
    assert client.http.get(kf[0]["kf_headimgurl"], timeout=5).headers["Content-Type"] == "image/svg+xml"

    updated = client.control("POST", f"/accounts/{appid}", {"kf_enabled": False, "certified": False})
    assert (updated["kf_enabled"], updated["certified"], updated["verify_type"]) == (False, False, -1)

    token = client.authorizer_token(appid)
    assert client.kf_del(token, "one@testshop")["errcode"] == 48001


def test_control_errors(client: Client) -> None:
    def status(method: str, endpoint: str, json: object = None) -> int:
        return client.http.request(method, client.url + "/sandbox" + endpoint, json=json, timeout=5).status_code

    assert status("POST", "/accounts", {"nick_name": "x", "kind": "newspaper"}) == 400
    assert status("POST", "/accounts", {"nick_name": "x", "kind": "service", "appid": seed.LOTUS_TEA}) == 409
    assert status("POST", "/accounts", {"nick_name": "x", "kind": "service", "colour": "red"}) == 400
    assert status("GET", "/accounts/wx0000000000000000") == 404
    assert status("POST", f"/accounts/{seed.LOTUS_TEA}/kf", {"kf_account": "alice@lotustea"}) == 409
    assert status("POST", f"/accounts/{seed.LOTUS_TEA}/quota", {"api": "fly"}) == 400
    assert status("POST", "/authorize", {"appid": "wx0000000000000000", "func": [1]}) == 404
    assert status("POST", "/authorize", {"appid": seed.LOTUS_TEA, "func": []}) == 400
    assert status("POST", "/expire", {"what": "everything"}) == 400
    assert status("GET", "/nothing-here") == 404
    assert status("DELETE", "/health") == 405


def test_reset_forgets_everything(client: Client) -> None:
    token = client.authorizer_token(seed.LOTUS_TEA)
    client.control("POST", "/faults", {"path": DEL, "errcode": -1})
    client.control("POST", "/reset", {"seed": True})
    assert client.control("GET", "/calls")["calls"] == []
    assert client.control("GET", "/faults")["faults"] == []
    assert client.kf_del(token, "alice@lotustea")["errcode"] == 40001
    assert not any(a["authorized"] for a in client.control("GET", "/accounts")["accounts"])
    client.control("POST", "/reset", {"seed": False})
    assert client.control("GET", "/accounts")["accounts"] == []


def test_the_sandbox_keeps_up_with_many_deletions(client: Client) -> None:
    count = 1000
    client.control("POST", f"/accounts/{seed.LOTUS_TEA}/kf", {"generate": count, "prefix": "bulk"})
    token = client.authorizer_token(seed.LOTUS_TEA)

    def delete(n: int) -> int:
        return client.kf_del(token, f"bulk{n}@lotustea")["errcode"]

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(delete, range(1, count + 1)))
    elapsed = time.monotonic() - started
    assert outcomes == [0] * count
    # "Thousands per minute" is ~50/s; leave room for slow CI machines but catch a regression
    # such as a per-call 40 ms stall.
    assert elapsed < 15, f"{count} deletions took {elapsed:.1f}s"


def test_bulk_accounts_are_authorized_and_listed_500_a_page(client: Client) -> None:
    """Issue 18: the scale bench puts 100,000 merchants on WeChat's side in one call."""
    appids = [f"wx{n:016x}" for n in range(1, 1202)]
    answer = client.control("POST", "/accounts/bulk", {"appids": appids, "refresh_tokens": True})
    assert answer["created"] == 1201 and set(answer["refresh_tokens"]) == set(appids)
    token = client.component_token()
    pages = [
        client.component("api_get_authorizer_list", {"offset": offset, "count": 500}, token)
        for offset in (0, 500, 1000)
    ]
    assert [p["total_count"] for p in pages] == [1201] * 3 and [len(p["list"]) for p in pages] == [500, 500, 201]
    listed = {item["authorizer_appid"]: item["refresh_token"] for p in pages for item in p["list"]}
    assert listed == answer["refresh_tokens"]
    # Each is a merchant like any other: its token works, it can be revoked (and leaves the list).
    assert client.post(
        "/cgi-bin/component/api_authorizer_token",
        {
            "component_appid": client.config.component_appid,
            "authorizer_appid": appids[0],
            "authorizer_refresh_token": listed[appids[0]],
        },
        component_access_token=token,
    ).json()["authorizer_access_token"]
    client.control("POST", "/unauthorize", {"appid": appids[0]})
    assert client.component("api_get_authorizer_list", {"offset": 0, "count": 500}, token)["total_count"] == 1200
    again = client.http.post(f"{client.url}/sandbox/accounts/bulk", json={"appids": appids[1:2]}, timeout=10)
    assert (again.status_code, again.json()) == (409, {"error": f"already exists: {appids[1]}"})
