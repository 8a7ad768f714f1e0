"""Issue 3 end to end: one request deletes 200 accounts; every one ends succeeded, each called once."""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

COUNT = 200


def test_bulk_request_of_200_accounts_deletes_them_all(stack: Stack) -> None:
    sandbox = stack.sandbox
    merchant = stack.new_merchant(kf=())
    sandbox.control("POST", f"/accounts/{merchant.appid}/kf", {"generate": COUNT, "prefix": "bulk"})
    accounts = sandbox.kf_accounts(merchant.appid)
    assert len(accounts) == COUNT
    mark = sandbox.mark()

    started = time.monotonic()
    response = merchant.api.post("/api/v1/deletions/", {"kf_accounts": accounts})
    answered = time.monotonic() - started
    assert response.status_code == 202, response.text
    deletions = response.json()["deletions"]
    assert [d["kf_account"] for d in deletions] == accounts
    done = eventually(
        lambda: merchant.api.all_deletions(page_size=500),
        lambda rows: len(rows) == COUNT and all(d["status"] in ("succeeded", "failed", "rejected") for d in rows),
        timeout=120,
        interval=0.25,
        what=f"{COUNT} deletions to end",
    )
    drained = time.monotonic() - started

    assert {d["status"] for d in done} == {"succeeded"}
    assert sandbox.kf_accounts(merchant.appid) == []
    calls = del_calls(sandbox, merchant.appid, since=mark)
    assert {c["errcode"] for c in calls} == {0}
    assert sorted(c["body"]["kf_account"] for c in calls) == sorted(accounts)  # each exactly once
    print(
        f"\nbulk: {COUNT} deletions answered in {answered * 1000:.0f} ms, drained in {drained:.1f} s "
        f"({COUNT / drained:.0f}/s, {stack.broker_url.split(':')[0]} broker, "
        f"{'PostgreSQL' if stack.db.is_postgres else 'SQLite'})"
    )
